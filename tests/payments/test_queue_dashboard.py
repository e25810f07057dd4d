"""The RQ dashboard, from which the payments queue can be emptied, is for queue managers only (issue 10,
item 2)."""

import django_rq
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client
from django_rq.settings import get_queues_list

# django-rq numbers its queues in the order of their names: the payments queue's page, whatever else is configured.
PAYMENTS_QUEUE_ADMIN = f"/admin/rq/queues/{[q['name'] for q in get_queues_list()].index('payments')}/"

DASHBOARD_PAGES = ["/admin/rq/", PAYMENTS_QUEUE_ADMIN, "/admin/rq/workers/0/", "/admin/rq/stats.json"]


def _staff(username: str, *permissions: str) -> Client:
    user = get_user_model().objects.create_user(username=username, password="x", is_staff=True)
    for codename in permissions:
        user.user_permissions.add(Permission.objects.get(codename=codename, content_type__app_label="payments"))
    browser = Client()
    browser.force_login(user)
    return browser


@pytest.mark.parametrize("page", DASHBOARD_PAGES)
def test_staff_without_the_queue_permission_cannot_see_the_queue_dashboard(db, page):
    browser = _staff("viewer", "view_payment", "refund_payment")
    assert browser.get(page).status_code == 403


def test_staff_without_the_queue_permission_cannot_empty_the_payments_queue(db, redis_client):
    # given: a job waiting in the payments queue
    queue = django_rq.get_queue("payments")
    queue.enqueue("payments.jobs.payment_process_job", "00000000-0000-0000-0000-000000000000")
    # when: a staff user without the permission posts the dashboard's "empty queue" form
    response = _staff("viewer", "view_payment").post(f"{PAYMENTS_QUEUE_ADMIN}empty/", {"post": "yes"})
    # then: refused, and the job is still there
    assert response.status_code == 403
    assert queue.count == 1


@pytest.mark.parametrize("page", DASHBOARD_PAGES)
def test_queue_managers_and_superusers_see_the_queue_dashboard(db, page):
    assert _staff("operator", "manage_queues").get(page).status_code == 200
    boss = Client()
    boss.force_login(get_user_model().objects.create_superuser(username="boss", password="x"))
    assert boss.get(page).status_code == 200


def test_anonymous_visitors_are_sent_to_the_admin_login(db):
    response = Client().get("/admin/rq/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


def test_only_the_queue_dashboard_relaxes_the_policy_for_django_rqs_inline_code(db):
    operator = _staff("operator", "manage_queues")
    dashboard = operator.get("/admin/rq/")["Content-Security-Policy"]
    assert "'unsafe-inline'" in dashboard
    assert "'unsafe-inline'" not in operator.get("/admin/")["Content-Security-Policy"]


def test_a_refused_request_is_one_log_line_not_a_traceback(db):
    import io
    import logging

    console = next(h for h in logging.getLogger().handlers if isinstance(h, logging.StreamHandler))
    written = io.StringIO()
    previous = console.setStream(written)
    try:
        for _ in range(3):
            assert _staff("viewer", "view_payment").get("/admin/rq/").status_code == 403
            get_user_model().objects.filter(username="viewer").delete()
    finally:
        console.setStream(previous)
    lines = [line for line in written.getvalue().splitlines() if line.strip()]
    assert len(lines) == 3 and all("Forbidden" in line for line in lines), lines
    assert "Traceback" not in written.getvalue()
