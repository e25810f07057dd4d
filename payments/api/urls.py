from csp.constants import SELF as CSP_SELF
from csp.decorators import csp_update
from django.urls import path, re_path
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from infrastructure.errors import not_found
from payments.api import views
from payments.api.status import payment_status

app_name = "payments-api"

urlpatterns = [
    path("payments", views.PaymentsView.as_view(), name="payments"),
    path("payments/<uuid:payment_id>", views.PaymentDetailView.as_view(), name="payment-detail"),
    path("payments/<uuid:payment_id>/status", payment_status, name="payment-status"),
    path("payments/<uuid:payment_id>/cancel", views.PaymentCancelView.as_view(), name="payment-cancel"),
    path("payments/<uuid:payment_id>/refunds", views.PaymentRefundsView.as_view(), name="payment-refunds"),
    path("payments/<uuid:payment_id>/refunds/<uuid:refund_id>", views.RefundDetailView.as_view(), name="refund-detail"),
    path("schema", SpectacularAPIView.as_view(), name="schema"),
    # Swagger UI draws its icons from data: URIs; only this page's policy allows them.
    path(
        "docs",
        csp_update({"img-src": [CSP_SELF, "data:"]})(SpectacularSwaggerView.as_view(url_name="payments-api:schema")),
        name="docs",
    ),
    # Anything else under the API is a problem+json 404, with DEBUG on too (Django's debug 404 page is HTML).
    re_path(r"^.*$", csrf_exempt(not_found)),
]
