"""The bench-only routes as config/urls.py adds them when BENCH_ENDPOINTS is on (tests run with it off)."""

from django.urls import include, path

urlpatterns = [
    path("api/v1/bench/", include("bench.urls")),
    path("api/v1/", include("payments.api.urls")),
]
