from django.conf import settings
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    # The queue dashboard lives inside the admin, for staff only.
    path("admin/rq/", include("django_rq.urls")),
    path("admin/", admin.site.urls),
]
# Benchmark-only endpoints (`make bench`), routed only when BENCH_ENDPOINTS is on; before the API's include,
# whose last route is a catch-all 404.
if settings.BENCH_ENDPOINTS:
    urlpatterns.append(path("api/v1/bench/", include("bench.urls")))
urlpatterns += [
    path("api/v1/", include("payments.api.urls")),
    path("", include("checkout.urls")),
]

handler400 = "config.errors.bad_request"
handler404 = "config.errors.not_found"
handler500 = "config.errors.server_error"
