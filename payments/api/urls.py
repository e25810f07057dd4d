from django.urls import path

from payments.api.views import PaymentStatusView

app_name = "payments-api"

urlpatterns = [
    path("payments/<uuid:payment_id>/status", PaymentStatusView.as_view(), name="payment-status"),
]
