"""The bench's root URLconf (bench/settings.py): the bench-only views under /api/v1/bench/, then the product's
URLs and error handlers (config/urls.py) as they are; and the bench-only socket, routed by bench/asgi.py."""

from django.urls import include, path

from bench import views
from bench.consumers import FloorConsumer
from config.urls import handler400, handler404, handler500  # noqa: F401 - the product's, looked up here
from config.urls import urlpatterns as product_urlpatterns

bench_urlpatterns = [
    path("ceiling", views.CeilingView.as_view(), name="ceiling"),
    path("payments-sync", views.SyncPaymentView.as_view(), name="payments-sync"),
    path("floor", views.FloorView.as_view(), name="floor"),
]
urlpatterns = [path("api/v1/bench/", include((bench_urlpatterns, "bench"))), *product_urlpatterns]

websocket_urlpatterns = [
    path("ws/bench/floor/<uuid:floor_id>", FloorConsumer.as_asgi()),
]
