"""The payments list in the admin (issue 14, item 1): what a row shows, the filters, the search, and what a page
costs in queries, through the real admin as a staff user who may view payments."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from checkout.models import Order
from payments.models import Payment, PaymentStatus
from payments.services.payments import payment_process
from tests.conftest import VISA_DECLINED

CHANGELIST = reverse("admin:payments_payment_changelist")
ABOVE_THE_USD_LIMIT = 600_000  # settings.RISK_AMOUNT_LIMITS["USD"] is 500_000


@pytest.fixture
def viewer(db) -> Client:
    user = User.objects.create_user(username="desk", password="not-used-1234", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="payments", codename__in=["view_payment"])
    )
    client = Client()
    client.force_login(user)
    return client


def listed(client: Client, **query) -> set:
    response = client.get(CHANGELIST, query)
    assert response.status_code == 200, response.content[:500]
    return {payment.pk for payment in response.context["cl"].result_list}


@pytest.fixture
def with_order(db):
    def attach(payment: Payment, email: str = "ada@example.com") -> Order:
        order = Order.objects.create(email=email, total=payment.amount, currency=payment.currency)
        Payment.objects.filter(pk=payment.pk).update(order=order)
        return order

    return attach


# --- a row --------------------------------------------------------------------------------------------------


def test_a_row_shows_status_badge_amount_card_payer_order_link_and_times_to_the_second(
    viewer, paid_payment, with_order
):
    # given
    payment = paid_payment(amount=2450)
    order = with_order(payment, "ada@example.com")
    payment.refresh_from_db()
    # when
    page = viewer.get(CHANGELIST).content.decode()
    # then
    assert 'class="payment-status payment-status-succeeded" data-status="succeeded">Succeeded<' in page
    assert "$24.50" in page
    assert "Visa •••• 4242" in page
    assert "ada@example.com" in page
    assert f'href="{reverse("admin:checkout_order_change", args=[order.pk])}">{order.number}</a>' in page
    assert f"{payment.created_at:%Y-%m-%d %H:%M:%S}" in page
    assert f"{payment.updated_at:%Y-%m-%d %H:%M:%S}" in page
    assert "payments/admin/desk.css" in page  # the badges' style sheet (no inline styles under the CSP)


def test_a_payment_made_over_the_api_names_its_api_client_as_payer(viewer, make_payment):
    # given: a payment owned by an API client, with no order
    merchant = User.objects.create_user(username="shop-backend")
    payment = make_payment()
    Payment.objects.filter(pk=payment.pk).update(owner_user=merchant, owner_guest_id=None)
    # when
    page = viewer.get(CHANGELIST).content.decode()
    # then
    assert "API client shop-backend" in page


def test_a_row_shows_the_risk_rule_behind_a_risk_refusal(viewer, make_payment):
    # given
    refused = make_payment(amount=ABOVE_THE_USD_LIMIT)
    payment_process(payment_id=refused.pk)
    # when
    page = viewer.get(CHANGELIST).content.decode()
    # then
    assert "risk_declined / amount_limit" in page
    assert "(rule: amount_limit)" in page


def test_a_page_costs_the_same_number_of_queries_for_5_rows_as_for_50(viewer, make_payment, with_order):
    # given: rows of every kind a column reads (an order, a risk refusal, a decline, a refund)
    def add_rows(count: int) -> None:
        for n in range(count):
            kind = n % 4
            if kind == 0:
                with_order(make_payment(amount=1000 + n), f"shopper{n}@example.com")
            elif kind == 1:
                payment_process(payment_id=make_payment(amount=ABOVE_THE_USD_LIMIT).pk)
            elif kind == 2:
                payment_process(payment_id=make_payment(VISA_DECLINED).pk)
            else:
                make_payment()

    def queries_for_the_list(rows: int) -> int:
        with CaptureQueriesContext(connection) as queries:
            response = viewer.get(CHANGELIST)
        assert len(response.context["cl"].result_list) == rows
        return len(queries)

    add_rows(5)
    five = queries_for_the_list(5)
    add_rows(45)
    # when
    fifty = queries_for_the_list(50)
    # then
    assert fifty == five, f"{five} queries for 5 rows, {fifty} for 50"


# --- the filters ---------------------------------------------------------------------------------------------


def test_filters_by_status_currency_failure_code_decline_code_and_risk_rule(viewer, paid_payment, make_payment):
    # given
    paid = paid_payment()
    pending_eur = make_payment(currency="EUR")
    declined = make_payment(VISA_DECLINED)
    payment_process(payment_id=declined.pk)
    refused = make_payment(amount=ABOVE_THE_USD_LIMIT)
    payment_process(payment_id=refused.pk)
    # then
    assert listed(viewer, status="succeeded") == {paid.pk}
    assert listed(viewer, currency="EUR") == {pending_eur.pk}
    assert listed(viewer, failure_code="card_declined") == {declined.pk}
    assert listed(viewer, failure_code="risk_declined") == {refused.pk}
    assert listed(viewer, decline_code="card_declined") == {declined.pk}
    assert listed(viewer, decline_code="amount_limit") == {refused.pk}
    assert listed(viewer, risk_rule="amount_limit") == {refused.pk}
    assert listed(viewer, risk_rule="velocity") == set()
    assert listed(viewer, status="failed", risk_rule="amount_limit") == {refused.pk}


def test_filters_by_created_date_and_offers_a_date_hierarchy(viewer, make_payment):
    # given
    payment = make_payment()
    created = payment.created_at
    # when
    page = viewer.get(CHANGELIST).content.decode()
    # then
    assert '<nav class="toplinks">' in page
    assert listed(viewer, created_at__year=created.year, created_at__month=created.month) == {payment.pk}
    assert listed(viewer, created_at__year=created.year - 1) == set()
    # the created date filter's own links ("Today", "Past 7 days", ...) are a [gte, lt) range of aware datetimes
    day = created.replace(hour=0, minute=0, second=0, microsecond=0)
    assert listed(viewer, created_at__gte=str(day), created_at__lt=str(day + timedelta(days=1))) == {payment.pk}
    assert listed(viewer, created_at__gte=str(day + timedelta(days=1))) == set()


# --- the search ----------------------------------------------------------------------------------------------


def test_search_by_id_or_its_first_characters(viewer, make_payment):
    # given
    payment, other = make_payment(), make_payment()
    full = str(payment.pk)
    # then: the whole id, with or without dashes, any case, or its first characters
    assert listed(viewer, q=full) == {payment.pk}
    assert listed(viewer, q=full.replace("-", "").upper()) == {payment.pk}
    assert payment.pk in listed(viewer, q=full[:8])
    assert payment.pk in listed(viewer, q=full[:13])  # "xxxxxxxx-xxxx": dashes are ignored
    assert other.pk not in listed(viewer, q=full[:12])
    assert listed(viewer, q="not-an-id") == set()


def test_search_by_last4_order_number_email_and_gateway_reference(viewer, paid_payment, make_payment, with_order):
    # given
    paid = paid_payment()
    paid.refresh_from_db()
    amex = make_payment("378282246310005")
    order = with_order(amex, "Grace@Example.com")
    # then
    assert listed(viewer, q="0005") == {amex.pk}
    assert paid.pk in listed(viewer, q="4242")
    assert listed(viewer, q=order.number) == {amex.pk}
    assert listed(viewer, q=order.number.lower()) == {amex.pk}
    assert listed(viewer, q="grace@example.com") == {amex.pk}
    assert paid.gateway_reference
    assert listed(viewer, q=paid.gateway_reference) == {paid.pk}


def test_search_and_filters_together(viewer, paid_payment, make_payment):
    # given: two payments with the same last 4, one paid
    paid, pending = paid_payment(), make_payment()
    # then
    assert listed(viewer, q="4242") >= {paid.pk, pending.pk}
    assert listed(viewer, q="4242", status=PaymentStatus.PENDING) == {pending.pk}
