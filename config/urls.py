from django.contrib import admin
from django.urls import include, path

from infrastructure.problem_types import problem_type_page, problem_types_page
from payments.callbacks import gateway_callback
from payments.dashboard_view import staff_dashboard
from payments.monitoring import healthz, metrics, readyz
from payments.queue_dashboard import queue_dashboard_urlpatterns

urlpatterns = [
    # Probes (answered ahead of host validation and the HTTPS redirect: settings.PROBE_PATHS) and Prometheus's page.
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics, name="metrics"),
    # The queue dashboard lives inside the admin, for staff holding payments.manage_queues only.
    path("admin/rq/", include((queue_dashboard_urlpatterns(), "django_rq"))),
    # The live staff dashboard, ahead of the admin's own routes (which would take the path for an app's page).
    path("admin/payments/dashboard/", staff_dashboard, name="payments-dashboard"),
    path("admin/", admin.site.urls),
    # Ahead of the payments API, whose last route answers 404 for anything else under api/v1/.
    path("api/v1/", include("webhooks.urls")),
    path("api/v1/", include("payments.api.urls")),
    # The gateway's callbacks (webhooks) into our app: signed, verified before anything is read.
    path("gateway/callbacks", gateway_callback, name="gateway-callback"),
    # The sandbox bank's own pages (its 3-D Secure challenge): what a real provider serves on its own site.
    path("sandbox-bank/", include("payments.sandbox.urls")),
    # A page per problem type: every problem document's `type` is one of these (infrastructure/problem_types.py).
    path("problems/", problem_types_page, name="problem-types"),
    path("problems/<slug:slug>", problem_type_page, name="problem-type"),
    path("", include("checkout.urls")),
]

handler400 = "infrastructure.errors.bad_request"
handler404 = "infrastructure.errors.not_found"
handler500 = "infrastructure.errors.server_error"
