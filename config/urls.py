from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    # The queue dashboard lives inside the admin, for staff only.
    path("admin/rq/", include("django_rq.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include("payments.api.urls")),
    path("", include("checkout.urls")),
]
