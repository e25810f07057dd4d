from django.contrib import admin
from django.urls import include, path

from payments.queue_dashboard import queue_dashboard_urlpatterns

urlpatterns = [
    # The queue dashboard lives inside the admin, for staff holding payments.manage_queues only.
    path("admin/rq/", include((queue_dashboard_urlpatterns(), "django_rq"))),
    path("admin/", admin.site.urls),
    path("api/v1/", include("payments.api.urls")),
    path("", include("checkout.urls")),
]

handler400 = "infrastructure.errors.bad_request"
handler404 = "infrastructure.errors.not_found"
handler500 = "infrastructure.errors.server_error"
