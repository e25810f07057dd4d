"""Routed under /api/v1/bench/ only when BENCH_ENDPOINTS is on (config/urls.py)."""

from django.urls import path

from bench import views

app_name = "bench"

urlpatterns = [
    path("ceiling", views.CeilingView.as_view(), name="ceiling"),
    path("payments-sync", views.SyncPaymentView.as_view(), name="payments-sync"),
]
