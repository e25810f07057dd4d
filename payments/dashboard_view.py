"""The live staff dashboard's page (/admin/payments/dashboard/): a snapshot rendered by the server, made live
by static/payments/dashboard.js over /ws/staff/dashboard. Without JavaScript it is that snapshot, as tables."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse

from payments.dashboard import SERIES, staff_dashboard_figures
from payments.dashboard_consumer import DASHBOARD_PERMISSION, may_watch_dashboard


@staff_member_required  # not signed in as staff: the admin's login page
def staff_dashboard(request):
    if not may_watch_dashboard(request.user):
        raise PermissionDenied("The dashboard needs the “Can view payment” permission.")
    figures = staff_dashboard_figures()
    rows = [
        {"minute": row["minute"][11:16], "counts": [row[name] for name in SERIES]}
        for row in reversed(figures["per_minute"])
    ]
    context = {
        **admin.site.each_context(request),
        "title": "Live dashboard",
        "figures": figures,
        "series": list(SERIES),
        "rows": rows,
        "totals": [(name, sum(row[name] for row in figures["per_minute"])) for name in SERIES],
        "permission": DASHBOARD_PERMISSION,
    }
    return TemplateResponse(request, "admin/payments/dashboard.html", context)
