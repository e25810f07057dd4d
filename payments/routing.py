from channels.auth import AuthMiddlewareStack
from channels.security.websocket import OriginValidator
from django.conf import settings
from django.urls import path

from payments.consumers import PaymentStatusConsumer
from payments.dashboard_consumer import StaffDashboardConsumer

websocket_urlpatterns = [
    path("ws/payments/<uuid:payment_id>", PaymentStatusConsumer.as_asgi()),
    # The admin's session is the credential here: the strict validator refuses a socket with no Origin too,
    # which config/asgi.py's lets through for the token-carrying payment sockets.
    path(
        "ws/staff/dashboard",
        OriginValidator(AuthMiddlewareStack(StaffDashboardConsumer.as_asgi()), settings.ALLOWED_HOSTS),
    ),
]
