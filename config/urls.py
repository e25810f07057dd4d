from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    # The queue dashboard lives inside the admin, for staff only.
    path("admin/rq/", include("django_rq.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include("payments.api.urls")),
    path("", include("checkout.urls")),
]

handler400 = "config.errors.bad_request"
handler404 = "config.errors.not_found"
handler500 = "config.errors.server_error"
