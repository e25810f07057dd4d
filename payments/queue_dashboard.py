"""The RQ dashboard (/admin/rq/) for those allowed to run the queues, not for every staff user.

django-rq's own views only ask for `is_staff`, and from them one can empty the payments queue, delete or
requeue jobs and stop workers. Every one of its routes is wrapped here to also ask for the
`payments.manage_queues` permission (superusers hold every permission).
"""

from __future__ import annotations

from functools import wraps

from csp.decorators import csp_update
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.urls import URLPattern
from django_rq.urls import get_admin_urlpatterns, get_api_urlpatterns

QUEUE_PERMISSION = "payments.manage_queues"


# django-rq's templates carry inline scripts and styles (select-all, confirmations). These pages are for queue
# managers only and show job ids, not shopper input, so they alone relax the site's policy for inline code.
_allow_django_rq_inline_code = csp_update({"script-src": ["'unsafe-inline'"], "style-src": ["'unsafe-inline'"]})


def queue_manager_required(view):
    @_allow_django_rq_inline_code
    @staff_member_required  # not signed in as staff: the admin's login page, as django-rq does it
    @wraps(view)
    def guarded(request, *args, **kwargs):
        if not request.user.has_perm(QUEUE_PERMISSION):
            raise PermissionDenied("Managing the job queues needs the “Can see and manage the job queues” permission.")
        return view(request, *args, **kwargs)

    return guarded


def queue_dashboard_urlpatterns() -> list[URLPattern]:
    """django-rq's routes, every one guarded (stats.json and metrics too: they would otherwise take any staff
    session, or an RQ_API_TOKEN, which we do not set)."""
    patterns = get_api_urlpatterns() + get_admin_urlpatterns()
    for pattern in patterns:
        pattern.callback = queue_manager_required(pattern.callback)
    return patterns
