"""Routed only when BENCH_ENDPOINTS is on: the HTTP views under /api/v1/bench/ (config/urls.py), the
WebSocket consumer under /ws/bench/ (config/asgi.py)."""

from django.urls import path

from bench import views
from bench.consumers import FloorConsumer

app_name = "bench"

urlpatterns = [
    path("ceiling", views.CeilingView.as_view(), name="ceiling"),
    path("payments-sync", views.SyncPaymentView.as_view(), name="payments-sync"),
    path("floor", views.FloorView.as_view(), name="floor"),
]

websocket_urlpatterns = [
    path("ws/bench/floor/<uuid:floor_id>", FloorConsumer.as_asgi()),
]
