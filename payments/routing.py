from django.urls import path

from payments.consumers import PaymentStatusConsumer

websocket_urlpatterns = [
    path("ws/payments/<uuid:payment_id>", PaymentStatusConsumer.as_asgi()),
]
