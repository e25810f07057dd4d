"""The live staff dashboard's figures (payments/dashboard.py) on known data, and its page: staff with
view_payment see the snapshot (a static page without JavaScript), others do not."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.utils import timezone

from payments.dashboard import SERIES, WINDOW_MINUTES, staff_dashboard_figures
from payments.models import Payment, PaymentStatus

S = PaymentStatus


def _as(payment, status, *, created, updated, recheck=None) -> None:
    # Known data: rows as a run of real payments would leave them (update() bypasses auto_now on purpose).
    Payment.objects.filter(pk=payment.pk).update(
        status=status, created_at=created, updated_at=updated, recheck_at=recheck
    )


@pytest.fixture
def known_payments(make_payment):
    now = timezone.now()
    minute_ago = now - timedelta(minutes=1)
    for took in (1, 2, 3):
        _as(make_payment(), S.SUCCEEDED, created=minute_ago - timedelta(seconds=took), updated=minute_ago)
    _as(make_payment(), S.FAILED, created=minute_ago - timedelta(seconds=10), updated=minute_ago)
    # outside the window: neither counted per minute nor in the percentiles
    _as(make_payment(), S.SUCCEEDED, created=now - timedelta(minutes=41), updated=now - timedelta(minutes=40))
    _as(make_payment(), S.UNKNOWN, created=now - timedelta(minutes=3), updated=now - timedelta(minutes=2))
    _as(make_payment(), S.PARTIALLY_REFUNDED, created=now - timedelta(minutes=9), updated=now - timedelta(minutes=3))
    # stuck: pending past its grace, processing past its lease; not stuck: within them
    _as(make_payment(), S.PENDING, created=now - timedelta(minutes=5), updated=now, recheck=now - timedelta(seconds=1))
    _as(make_payment(), S.PROCESSING, created=now, updated=now, recheck=now - timedelta(seconds=5))
    _as(make_payment(), S.PROCESSING, created=now, updated=now, recheck=now + timedelta(seconds=60))
    _as(make_payment(), S.PENDING, created=now, updated=now, recheck=now + timedelta(seconds=20))
    return now


def _minute_of(figures, when) -> dict:
    key = when.replace(second=0, microsecond=0).isoformat()
    return next(row for row in figures["per_minute"] if row["minute"] == key)


def test_figures_on_known_data(known_payments):
    # given
    now = known_payments

    # when
    figures = staff_dashboard_figures(now=now)

    # then: one row a minute over the window, each outcome in the minute of its latest change
    assert figures["series"] == list(SERIES)
    assert len(figures["per_minute"]) == WINDOW_MINUTES + 1
    assert _minute_of(figures, now - timedelta(minutes=1)) | {"minute": None} == {
        "minute": None,
        "succeeded": 3,
        "failed": 1,
        "canceled": 0,
        "unknown": 0,
        "refunded": 0,
    }
    assert _minute_of(figures, now - timedelta(minutes=2))["unknown"] == 1
    assert _minute_of(figures, now - timedelta(minutes=3))["refunded"] == 1
    totals = {name: sum(row[name] for row in figures["per_minute"]) for name in SERIES}
    assert totals == {"succeeded": 3, "failed": 1, "canceled": 0, "unknown": 1, "refunded": 1}
    # created → outcome over 1, 2, 3 and 10 seconds (nearest rank)
    assert figures["time_to_outcome"] | {"window_seconds": None} == {
        "p50": 2.0,
        "p99": 10.0,
        "sample": 4,
        "window_seconds": None,
    }
    assert figures["unknown"] == 1
    assert figures["stuck"] == 2


def test_figures_with_nothing_yet(db):
    figures = staff_dashboard_figures()
    assert figures["time_to_outcome"]["p50"] is None and figures["time_to_outcome"]["p99"] is None
    assert figures["unknown"] == figures["stuck"] == 0
    assert all(row[name] == 0 for row in figures["per_minute"] for name in SERIES)


def test_figures_read_a_bounded_number_of_statements(known_payments, django_assert_max_num_queries):
    with django_assert_max_num_queries(3):  # per minute, the percentile sample, unknown + stuck
        staff_dashboard_figures(now=known_payments)


def _signed_in(*perms: str, is_staff: bool = True) -> Client:
    user = User.objects.create_user(username=f"u{User.objects.count()}", password="not-used-1234", is_staff=is_staff)
    for perm in perms:
        user.user_permissions.add(Permission.objects.get(content_type__app_label="payments", codename=perm))
    client = Client()
    client.force_login(user)
    return client


def test_the_page_is_a_snapshot_for_staff_with_view_payment(known_payments):
    # given: outcomes in the window
    client = _signed_in("view_payment")

    # when
    response = client.get("/admin/payments/dashboard/")

    # then: the figures are in the page itself (works without JavaScript), and its script is a static file
    assert response.status_code == 200
    page = response.content.decode()
    assert 'aria-label="Outcomes per minute"' in page
    assert '<dd data-figure="stuck">2</dd>' in page
    assert '<dd data-figure="unknown">1</dd>' in page
    assert "payments/dashboard.js" in page
    assert "<script>" not in page.replace('<script id="dashboard-figures" type="application/json">', "")
    # and the admin's home links to it
    assert 'href="/admin/payments/dashboard/"' in client.get("/admin/").content.decode()


def test_the_page_refuses_others(db):
    assert _signed_in(is_staff=True).get("/admin/payments/dashboard/").status_code == 403
    assert 'href="/admin/payments/dashboard/"' not in _signed_in(is_staff=True).get("/admin/").content.decode()
    response = _signed_in("view_payment", is_staff=False).get("/admin/payments/dashboard/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    response = Client().get("/admin/payments/dashboard/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
