"""Staff actions in the admin: who may refund or cancel, the confirmation before money moves, and who did it.

Every test drives the real admin through the test client, logged in as a real staff user holding real
permissions; refunds run against the sandbox bank the way the worker runs them.
"""

from __future__ import annotations

from datetime import timedelta

import django_rq
import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import Permission, User
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from checkout.models import Order, OrderStatus, Product
from payments.admin_actions import MAX_PAYMENTS_PER_ACTION
from payments.models import Actor, Payment, PaymentStatus, Refund, RefundStatus
from payments.sandbox.models import Charge
from payments.services.dispatch import PAYMENT_JOB, payment_enqueue, payments_queue
from payments.services.payments import payment_process
from payments.services.refunds import refund_create, refund_process
from payments.services.transitions import payment_transition
from tests.conftest import VISA_DECLINED
from tests.payments.bank import credits_for

CHANGELIST = "admin:payments_payment_changelist"
CONFIRMATION_TEMPLATE = "admin/payments/payment/action_confirmation.html"


@pytest.fixture
def staff(db):
    """A logged-in client for a staff user holding exactly the given permissions ("app.codename")."""

    def make(*perms: str, username: str | None = None) -> Client:
        user = User.objects.create_user(
            username=username or f"staff{User.objects.count()}", password="not-used-1234", is_staff=True
        )
        for perm in perms:
            app_label, codename = perm.split(".")
            user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
        client = Client()
        client.force_login(user)
        client.user = user
        return client

    return make


def choose_action(client: Client, action: str, payments, **extra):
    """What the changelist's "Go" button posts: the action and the ticked payments."""
    data = {"action": action, "index": "0", "_selected_action": [str(p.pk) for p in payments], **extra}
    return client.post(reverse(CHANGELIST), data, follow=True)


def confirm_action(client: Client, action: str, amounts: dict, **extra):
    """What the confirmation page's "Yes" button posts: {payment: amount the page showed}."""
    data = {
        "action": action,
        "post": "yes",
        "_selected_action": [str(p.pk) for p in amounts],
        **{f"confirmed_amount-{p.pk}": str(amount) for p, amount in amounts.items()},
        **extra,
    }
    return client.post(reverse(CHANGELIST), data, follow=True)


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def action_names(response) -> set[str]:
    form = response.context["action_form"]
    return {name for name, _ in form.fields["action"].choices} if form else set()


# --- who may act --------------------------------------------------------------------------------------------


def test_view_only_staff_does_not_see_refund_or_cancel_actions(staff, paid_payment):
    # given
    paid_payment()
    viewer = staff("payments.view_payment")
    # when
    response = viewer.get(reverse(CHANGELIST))
    # then
    assert response.status_code == 200
    assert not {"refund_in_full", "cancel_pending"} & action_names(response)
    assert b"refund_in_full" not in response.content
    assert b"cancel_pending" not in response.content


def test_each_action_is_offered_only_to_holders_of_its_permission(staff, paid_payment):
    # given
    paid_payment()
    refunder = staff("payments.view_payment", "payments.refund_payment")
    canceler = staff("payments.view_payment", "payments.cancel_payment")
    # when
    refunder_actions = action_names(refunder.get(reverse(CHANGELIST)))
    canceler_actions = action_names(canceler.get(reverse(CHANGELIST)))
    # then
    assert "refund_in_full" in refunder_actions and "cancel_pending" not in refunder_actions
    assert "cancel_pending" in canceler_actions and "refund_in_full" not in canceler_actions


@pytest.mark.parametrize("step", ["action", "confirmation"])
def test_view_only_staff_cannot_refund_even_with_forged_action_post(staff, paid_payment, step):
    # given
    payment = paid_payment(amount=2400)
    viewer = staff("payments.view_payment")
    # when: the POST the changelist's "Go" button or the confirmation page's "Yes" would send
    if step == "action":
        response = choose_action(viewer, "refund_in_full", [payment])
    else:
        response = confirm_action(viewer, "refund_in_full", {payment: 2400})
    # then: Django offers this user no action, so the POST is not an action at all: the list is shown again
    assert response.status_code == 200
    assert response.templates[0].name == "admin/change_list.html"
    assert not Refund.objects.exists()
    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.SUCCEEDED
    assert not LogEntry.objects.exists()


@pytest.mark.parametrize("step", ["action", "confirmation"])
def test_view_only_staff_cannot_cancel_even_with_forged_action_post(staff, make_payment, step):
    # given
    payment = make_payment(amount=2400)
    viewer = staff("payments.view_payment")
    # when
    if step == "action":
        choose_action(viewer, "cancel_pending", [payment])
    else:
        confirm_action(viewer, "cancel_pending", {payment: 2400})
    # then
    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.PENDING


@pytest.mark.parametrize("step", ["action", "confirmation"])
def test_cancel_needs_cancel_permission(staff, make_payment, step):
    # given: a staff user who may refund, but not cancel
    payment = make_payment(amount=2400)
    refunder = staff("payments.view_payment", "payments.refund_payment")
    # when: a forged cancel
    if step == "action":
        response = choose_action(refunder, "cancel_pending", [payment])
    else:
        response = confirm_action(refunder, "cancel_pending", {payment: 2400})
    # then: Django refuses an action this user is not offered
    assert "No action selected." in messages_of(response)
    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.PENDING
    assert not payment.events.filter(to_status=PaymentStatus.CANCELED).exists()


@pytest.mark.parametrize("step", ["action", "confirmation"])
def test_refund_needs_refund_permission(staff, paid_payment, step):
    # given: a staff user who may cancel, but not refund
    payment = paid_payment(amount=2400)
    canceler = staff("payments.view_payment", "payments.cancel_payment")
    # when
    if step == "action":
        response = choose_action(canceler, "refund_in_full", [payment])
    else:
        response = confirm_action(canceler, "refund_in_full", {payment: 2400})
    # then
    assert "No action selected." in messages_of(response)
    assert not Refund.objects.exists()


def test_staff_with_change_payment_cannot_save_a_payment_by_hand(staff, paid_payment):
    # given: even change_payment does not make the payment form writable (a save would write the whole row)
    payment = paid_payment()
    editor = staff("payments.view_payment", "payments.change_payment")
    url = reverse("admin:payments_payment_change", args=[payment.pk])
    # when
    page = editor.get(url)
    response = editor.post(url, {"status": PaymentStatus.REFUNDED, "amount_refunded": payment.amount})
    # then
    assert page.status_code == 200 and b'name="_save"' not in page.content
    assert response.status_code == 403
    payment.refresh_from_db()
    assert (payment.status, payment.amount_refunded) == (PaymentStatus.SUCCEEDED, 0)


# --- the confirmation page ----------------------------------------------------------------------------------


def test_refund_action_asks_for_confirmation_before_moving_money(staff, paid_payment):
    # given
    payment = paid_payment(amount=2400)
    refunder = staff("payments.view_payment", "payments.refund_payment")
    # when
    response = choose_action(refunder, "refund_in_full", [payment])
    # then: a page saying what would happen, and nothing has happened
    assert response.status_code == 200
    assert CONFIRMATION_TEMPLATE in [t.name for t in response.templates]
    page = response.content.decode()
    assert str(payment.pk) in page
    assert "Refund $24.00" in page
    assert 'id="action-total">$24.00<' in page
    assert 'value="Yes, refund"' in page
    assert "No, take me back" in page
    assert 'name="post" value="yes"' in page
    assert f'name="confirmed_amount-{payment.pk}" value="2400"' in page
    assert 'name="csrfmiddlewaretoken"' in page
    assert not Refund.objects.exists()
    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.SUCCEEDED
    assert not LogEntry.objects.exists()


def test_cancel_action_asks_for_confirmation_before_canceling(staff, make_payment):
    # given
    payment = make_payment(amount=1500)
    canceler = staff("payments.view_payment", "payments.cancel_payment")
    # when
    response = choose_action(canceler, "cancel_pending", [payment])
    # then
    assert CONFIRMATION_TEMPLATE in [t.name for t in response.templates]
    assert 'value="Yes, cancel"' in response.content.decode()
    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.PENDING


def test_refund_confirmation_lists_what_cannot_be_refunded_and_totals_only_what_will_be(
    staff, paid_payment, make_payment
):
    # given: two refundable payments (one already partly refunded), one pending, one declined
    full = paid_payment(amount=2400)
    partly = paid_payment(amount=1000)
    refund_process(refund_id=refund_create(payment_id=partly.pk, actor=Actor.STAFF, amount=400).pk, actor=Actor.WORKER)
    pending = make_payment(amount=700)
    declined = make_payment(VISA_DECLINED, amount=900)
    payment_process(payment_id=declined.pk)
    refunder = staff("payments.view_payment", "payments.refund_payment")
    # when
    response = choose_action(refunder, "refund_in_full", [full, partly, pending, declined])
    # then
    page = response.content.decode()
    assert "Refund $24.00" in page
    assert "Refund $6.00" in page
    assert "Cannot be refunded: a pending payment cannot be refunded" in page
    assert "Cannot be refunded: a failed payment cannot be refunded" in page
    assert 'id="action-total">$30.00<' in page
    assert "<strong>2 payments</strong>" in page
    assert "2 of the 4 selected will be left as they are" in page
    # only what will be refunded is carried by the confirm button
    steps = {str(step.payment.pk) for step in response.context["doable"]}
    assert steps == {str(full.pk), str(partly.pk)}
    assert f'name="confirmed_amount-{pending.pk}"' not in page


def test_confirmation_of_nothing_refundable_offers_no_confirm_button(staff, make_payment):
    # given
    pending = make_payment()
    refunder = staff("payments.view_payment", "payments.refund_payment")
    # when
    response = choose_action(refunder, "refund_in_full", [pending])
    # then
    page = response.content.decode()
    assert "nothing will happen" in page
    assert 'value="Yes, refund"' not in page


# --- confirmed: the staff user on record --------------------------------------------------------------------


def test_confirmed_refund_records_the_staff_user_as_requester_and_on_the_event(
    staff, paid_payment, django_capture_on_commit_callbacks
):
    # given
    payment = paid_payment(amount=2400)
    refunder = staff("payments.view_payment", "payments.refund_payment", username="alice")
    # when: confirmed, then the refund's job runs as the worker runs it
    with django_capture_on_commit_callbacks(execute=True):
        response = confirm_action(refunder, "refund_in_full", {payment: 2400})
    refund = Refund.objects.get(payment=payment)
    job = django_rq.get_queue("payments").fetch_job(f"refund-{refund.pk}")
    assert job is not None and job.args == (str(refund.pk),)
    refund_process(refund_id=job.args[0], actor=Actor.WORKER)
    # then
    assert "Refunds queued for 1 payment(s), $24.00 in all" in messages_of(response)[0]
    refund.refresh_from_db()
    assert (refund.status, refund.amount, refund.actor) == (RefundStatus.SUCCEEDED, 2400, Actor.STAFF)
    assert refund.requested_by == refunder.user
    assert credits_for(refund).get().amount == 2400
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.REFUNDED
    event = payment.events.get(to_status=PaymentStatus.REFUNDED)
    assert event.actor_user == refunder.user
    # and the admin history says who asked
    entry = LogEntry.objects.get(object_id=str(payment.pk))
    assert (entry.user, entry.action_flag) == (refunder.user, CHANGE)
    assert entry.change_message == f"Refund of $24.00 requested ({refund.pk})."
    history = refunder.get(reverse("admin:payments_payment_history", args=[payment.pk])).content.decode()
    assert "alice" in history and "Refund of $24.00 requested" in history
    # and the payment's page shows the person on the refund and on the event
    detail = refunder.get(reverse("admin:payments_payment_change", args=[payment.pk])).content.decode()
    events, refunds = detail.split('id="events-group"')[1].split('id="refunds-group"')
    assert ">alice<" in events and ">alice<" in refunds


def test_confirmed_cancel_records_the_staff_user_on_the_event_and_in_the_history(staff, make_payment):
    # given
    payment = make_payment(amount=1500)
    canceler = staff("payments.view_payment", "payments.cancel_payment", username="bob")
    # when
    response = confirm_action(canceler, "cancel_pending", {payment: 1500})
    # then
    assert "1 payment(s) canceled." in messages_of(response)
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.CANCELED
    event = payment.events.get(to_status=PaymentStatus.CANCELED)
    assert (event.actor, event.actor_user) == (Actor.STAFF, canceler.user)
    entry = LogEntry.objects.get(object_id=str(payment.pk))
    assert (entry.user, entry.change_message) == (canceler.user, "Canceled.")


def test_confirmed_cancel_of_a_payment_a_worker_took_meanwhile_cancels_nothing(staff, make_payment):
    # given: the page showed it pending; a worker charged it before the confirm
    payment = make_payment(amount=1500)
    canceler = staff("payments.view_payment", "payments.cancel_payment")
    choose_action(canceler, "cancel_pending", [payment])
    payment_process(payment_id=payment.pk)
    # when
    response = confirm_action(canceler, "cancel_pending", {payment: 1500})
    # then
    assert any("not canceled" in message for message in messages_of(response))
    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.SUCCEEDED
    assert not LogEntry.objects.exists()


def test_confirmed_refund_refunds_what_the_page_showed_or_nothing(staff, paid_payment):
    # given: the page showed $24.00 left; an API refund of $10.00 happened before the confirm
    payment = paid_payment(amount=2400)
    refunder = staff("payments.view_payment", "payments.refund_payment")
    choose_action(refunder, "refund_in_full", [payment])
    refund_create(payment_id=payment.pk, actor=Actor.API, amount=1000)
    # when
    response = confirm_action(refunder, "refund_in_full", {payment: 2400})
    # then: not a surprise $14.00 refund, and not $24.00 either
    assert any("you confirmed $24.00, it is $14.00 now" in message for message in messages_of(response))
    assert list(Refund.objects.values_list("amount", flat=True)) == [1000]


def test_a_confirm_post_without_the_confirmed_amounts_moves_no_money(staff, paid_payment):
    # given: a staff user who may refund skips the confirmation page with a hand-made post=yes
    payment = paid_payment(amount=2400)
    refunder = staff("payments.view_payment", "payments.refund_payment")
    # when
    response = refunder.post(
        reverse(CHANGELIST),
        {"action": "refund_in_full", "post": "yes", "_selected_action": [str(payment.pk)]},
        follow=True,
    )
    # then
    assert any("it was not on the confirmation page" in message for message in messages_of(response))
    assert not Refund.objects.exists()


def test_submitting_the_confirmation_twice_refunds_once(staff, paid_payment):
    # given
    payment = paid_payment(amount=2400)
    refunder = staff("payments.view_payment", "payments.refund_payment")
    # when: a double click, or back and resubmit
    confirm_action(refunder, "refund_in_full", {payment: 2400})
    second = confirm_action(refunder, "refund_in_full", {payment: 2400})
    # then
    assert Refund.objects.filter(payment=payment).count() == 1
    assert any("nothing is left to refund" in message for message in messages_of(second))


def test_a_tampered_selection_is_refused_without_a_server_error(staff, paid_payment):
    # given
    payment = paid_payment()
    refunder = staff("payments.view_payment", "payments.refund_payment")
    # when
    response = refunder.post(
        reverse(CHANGELIST),
        {"action": "refund_in_full", "index": "0", "_selected_action": [str(payment.pk), "1 OR 1=1"]},
        follow=True,
    )
    # then
    assert response.status_code == 200
    assert "Those are not payments. Nothing was changed." in messages_of(response)
    assert not Refund.objects.exists()


# --- select all ---------------------------------------------------------------------------------------------


def test_select_all_beyond_the_cap_is_refused_before_any_page_or_money(staff, make_payment):
    # given: more payments than one action may touch, all "selected across" the whole list
    payments = [make_payment(amount=100) for _ in range(MAX_PAYMENTS_PER_ACTION + 1)]
    canceler = staff("payments.view_payment", "payments.cancel_payment")
    # when: the action, and a forged confirmation of everything
    response = choose_action(canceler, "cancel_pending", payments[:1], select_across="1")
    forged = confirm_action(canceler, "cancel_pending", {p: 100 for p in payments}, select_across="1")
    # then
    for answer in (response, forged):
        assert CONFIRMATION_TEMPLATE not in [t.name for t in answer.templates]
        assert f"{MAX_PAYMENTS_PER_ACTION + 1} payments selected: one action handles at most" in messages_of(answer)[0]
    assert not Payment.objects.filter(status=PaymentStatus.CANCELED).exists()


def test_select_all_within_the_cap_lists_every_payment_and_confirms_only_those_listed(staff, paid_payment):
    # given: three payments; one ticked, then "select all 3"
    payments = [paid_payment(amount=1000 * n) for n in (1, 2, 3)]
    refunder = staff("payments.view_payment", "payments.refund_payment")
    # when
    response = choose_action(refunder, "refund_in_full", payments[:1], select_across="1")
    # then: the count and total of the whole selection, and the ids spelled out for the confirm
    page = response.content.decode()
    assert "You chose every payment matching the list" in page
    assert "<strong>3 payments</strong>" in page
    assert 'id="action-total">$60.00<' in page
    assert page.count('name="_selected_action"') == 3
    assert 'name="select_across"' not in page
    assert not Refund.objects.exists()


# --- the rest of the admin ----------------------------------------------------------------------------------


# The order form's (read-only) lines inline still posts its management form.
NO_LINES = {"lines-TOTAL_FORMS": "0", "lines-INITIAL_FORMS": "0"}


@pytest.fixture
def order(db):
    return Order.objects.create(email="shopper@example.com", total=2400, currency="USD")


def test_order_status_and_total_are_not_editable_and_orders_are_not_made_or_deleted_by_hand(staff, order):
    # given: a staff user holding every order permission
    editor = staff(*(f"checkout.{perm}_order" for perm in ("view", "add", "change", "delete")))
    url = reverse("admin:checkout_order_change", args=[order.pk])
    # when
    page = editor.get(url)
    editor.post(
        url, {"status": OrderStatus.PAID, "total": 1, "email": "x@example.com", "shipping_name": "Ann", **NO_LINES}
    )
    # then
    form = page.context["adminform"].form
    assert {"status", "total", "email"}.isdisjoint(form.fields)
    order.refresh_from_db()
    assert (order.status, order.total, order.email, order.shipping_name) == (
        OrderStatus.AWAITING_PAYMENT,
        2400,
        "shopper@example.com",
        "Ann",
    )
    assert editor.get(reverse("admin:checkout_order_add")).status_code == 403
    assert editor.post(reverse("admin:checkout_order_delete", args=[order.pk]), {"post": "yes"}).status_code == 403
    assert Order.objects.filter(pk=order.pk).exists()


def test_saving_an_order_writes_only_the_fields_the_form_changed(staff, order):
    # given: the order's status is the payment's to change, concurrently with any staff edit
    editor = staff("checkout.view_order", "checkout.change_order")
    url = reverse("admin:checkout_order_change", args=[order.pk])
    # when
    with CaptureQueriesContext(connection) as queries:
        editor.post(url, {"shipping_name": "Ann", "shipping_city": "Oslo", **NO_LINES})
    # then: the UPDATE names the shipping fields, not the status
    updates = [q["sql"] for q in queries.captured_queries if q["sql"].startswith('UPDATE "checkout_order"')]
    assert len(updates) == 1
    assert "shipping_name" in updates[0] and "shipping_city" in updates[0]
    assert '"status"' not in updates[0]


def test_the_sandbox_banks_records_are_read_only_even_for_a_superuser(db, paid_payment):
    # given
    paid_payment()
    root = User.objects.create_superuser(username="root", password="not-used-1234")
    client = Client()
    client.force_login(root)
    charge = Charge.objects.get()
    # when / then: no add, change or delete, and no bulk delete action
    assert client.get(reverse("admin:sandbox_charge_add")).status_code == 403
    assert client.post(reverse("admin:sandbox_charge_change", args=[charge.pk]), {"amount": 1}).status_code == 403
    assert client.post(reverse("admin:sandbox_charge_delete", args=[charge.pk]), {"post": "yes"}).status_code == 403
    assert "delete_selected" not in action_names(client.get(reverse("admin:sandbox_charge_changelist")))
    assert Charge.objects.get().amount == charge.amount


def test_the_payment_page_never_shows_the_vault_token(db, make_payment):
    payment = make_payment()
    boss = Client()
    boss.force_login(User.objects.create_superuser(username="boss-token", password="x"))
    page = boss.get(f"/admin/payments/payment/{payment.pk}/change/")
    assert page.status_code == 200
    assert payment.card_last4 in page.content.decode()
    assert payment.card_token not in page.content.decode()


def test_no_admin_page_lists_api_tokens_even_to_staff_allowed_to_view_them(db):
    # given: a "view everything" staff role, and a merchant's API token
    from rest_framework.authtoken.models import Token

    merchant = User.objects.create_user(username="merchant-with-token")
    token = Token.objects.create(user=merchant)
    viewer = User.objects.create_user(username="viewer-tokens", password="x", is_staff=True)
    viewer.user_permissions.add(*Permission.objects.filter(codename__in=["view_tokenproxy", "view_payment"]))
    browser = Client()
    browser.force_login(viewer)
    # then: there is no token page to read it from
    assert browser.get("/admin/authtoken/tokenproxy/").status_code == 404
    assert token.key not in browser.get("/admin/").content.decode()


# --- refund an amount: part or the rest ---------------------------------------------------------------------

REFUND_AMOUNT_FORM = "admin/payments/payment/refund_amount_form.html"


def review_refund(client: Client, amounts: dict, **extra):
    """What the amount form's "Review refund" posts: {payment: the amount typed, in major units}."""
    data = {
        "action": "refund_amount",
        "step": "review",
        "_selected_action": [str(p.pk) for p in amounts],
        **{f"refund_amount-{p.pk}": text for p, text in amounts.items()},
        **extra,
    }
    return client.post(reverse(CHANGELIST), data, follow=True)


def confirm_refund_amount(client: Client, amounts: dict, seen: dict):
    """What the confirmation page's "Yes, refund" posts for refund_amount: the amount, and what was left."""
    data = {
        "action": "refund_amount",
        "post": "yes",
        "_selected_action": [str(p.pk) for p in amounts],
        **{f"confirmed_amount-{p.pk}": str(amount) for p, amount in amounts.items()},
        **{f"refundable_seen-{p.pk}": str(left) for p, left in seen.items()},
    }
    return client.post(reverse(CHANGELIST), data, follow=True)


def test_refund_amount_asks_how_much_defaulting_to_what_is_left(staff, paid_payment):
    # given: a payment with $4.00 of its $24.00 already refunded
    payment = paid_payment(amount=2400)
    refund_process(refund_id=refund_create(payment_id=payment.pk, actor=Actor.API, amount=400).pk, actor=Actor.WORKER)
    refunder = staff("payments.view_payment", "payments.refund_payment")
    # when
    response = choose_action(refunder, "refund_amount", [payment])
    # then: a form, the rest filled in, nothing done
    assert REFUND_AMOUNT_FORM in [t.name for t in response.templates]
    page = response.content.decode()
    assert f'name="refund_amount-{payment.pk}" value="20.00"' in page
    assert "$20.00" in page and 'value="Review refund"' in page
    assert Refund.objects.count() == 1


@pytest.mark.parametrize(
    ("typed", "error"),
    [
        ("0", "The amount must be more than 0."),
        ("0.00", "The amount must be more than 0."),
        ("24.01", "At most $24.00 is left to refund on this payment."),
        ("100", "At most $24.00 is left to refund on this payment."),
        ("ten", "Enter an amount in USD like 12.50"),
        ("-5", "Enter an amount in USD like 12.50"),
        ("12,50", "Enter an amount in USD like 12.50"),
        ("", "Enter an amount in USD like 12.50"),
        ("1.005", "USD has at most 2 decimals."),
    ],
)
def test_refund_amount_refuses_a_bad_amount_inline_and_refunds_nothing(staff, paid_payment, typed, error):
    # given
    payment = paid_payment(amount=2400)
    refunder = staff("payments.view_payment", "payments.refund_payment")
    # when
    response = review_refund(refunder, {payment: typed})
    # then: the form again, the error beside the field, what was typed kept
    assert REFUND_AMOUNT_FORM in [t.name for t in response.templates]
    page = response.content.decode()
    assert f'<ul class="errorlist" id="error_refund_amount-{payment.pk}"><li>{error}' in page
    assert 'aria-invalid="true"' in page
    assert "Nothing has been refunded." in page
    assert CONFIRMATION_TEMPLATE not in [t.name for t in response.templates]
    assert not Refund.objects.exists()


def test_refund_amount_confirms_then_refunds_part_and_records_the_staff_user(
    staff, paid_payment, django_capture_on_commit_callbacks
):
    # given
    payment = paid_payment(amount=2400)
    refunder = staff("payments.view_payment", "payments.refund_payment", username="carol")
    # when: $10.00 typed and reviewed
    review = review_refund(refunder, {payment: "10"})
    # then: the confirmation page, promising exactly that, nothing done yet
    assert CONFIRMATION_TEMPLATE in [t.name for t in review.templates]
    page = review.content.decode()
    assert "Refund $10.00 of the $24.00 left" in page
    assert 'id="action-total">$10.00<' in page
    assert f'name="confirmed_amount-{payment.pk}" value="1000"' in page
    assert f'name="refundable_seen-{payment.pk}" value="2400"' in page
    assert 'value="Yes, refund"' in page
    assert not Refund.objects.exists()
    # when: confirmed, and the refund's job runs as the worker runs it
    with django_capture_on_commit_callbacks(execute=True):
        response = confirm_refund_amount(refunder, {payment: 1000}, {payment: 2400})
    refund = Refund.objects.get(payment=payment)
    refund_process(refund_id=refund.pk, actor=Actor.WORKER)
    # then
    assert "Refunds queued for 1 payment(s), $10.00 in all" in messages_of(response)[0]
    refund.refresh_from_db()
    assert (refund.amount, refund.status, refund.actor, refund.requested_by) == (
        1000,
        RefundStatus.SUCCEEDED,
        Actor.STAFF,
        refunder.user,
    )
    assert refund.reason == "partial refund (admin)"
    payment.refresh_from_db()
    assert (payment.status, payment.amount_refunded) == (PaymentStatus.PARTIALLY_REFUNDED, 1000)
    assert payment.events.get(to_status=PaymentStatus.PARTIALLY_REFUNDED).actor_user == refunder.user
    entry = LogEntry.objects.get(object_id=str(payment.pk))
    assert (entry.user, entry.change_message) == (refunder.user, f"Refund of $10.00 requested ({refund.pk}).")
    # and the rest can be refunded the same way, the form now defaulting to it
    again = choose_action(refunder, "refund_amount", [payment]).content.decode()
    assert f'name="refund_amount-{payment.pk}" value="14.00"' in again


def test_refund_amount_confirmed_after_the_payment_changed_refunds_nothing(staff, paid_payment):
    # given: the page said $24.00 was left; an API refund of $10.00 happened before "Yes"
    payment = paid_payment(amount=2400)
    refunder = staff("payments.view_payment", "payments.refund_payment")
    review_refund(refunder, {payment: "5.00"})
    refund_create(payment_id=payment.pk, actor=Actor.API, amount=1000)
    # when
    response = confirm_refund_amount(refunder, {payment: 500}, {payment: 2400})
    # then
    assert any(
        "$24.00 was left to refund when you confirmed, $14.00 is now" in message for message in messages_of(response)
    )
    assert list(Refund.objects.values_list("amount", flat=True)) == [1000]


def test_refund_amount_confirm_without_the_page_or_above_what_is_left_refunds_nothing(staff, paid_payment):
    # given
    payment = paid_payment(amount=2400)
    refunder = staff("payments.view_payment", "payments.refund_payment")
    # when: a hand-made post=yes without the page's fields, and one promising more than is left
    bare = refunder.post(
        reverse(CHANGELIST),
        {"action": "refund_amount", "post": "yes", "_selected_action": [str(payment.pk)]},
        follow=True,
    )
    too_much = confirm_refund_amount(refunder, {payment: 2500}, {payment: 2400})
    # then
    assert any("it was not on the confirmation page" in message for message in messages_of(bare))
    assert any("not refunded" in message for message in messages_of(too_much))
    assert not Refund.objects.exists()


@pytest.mark.parametrize("step", ["action", "review", "confirmation"])
def test_refund_amount_needs_refund_permission(staff, paid_payment, step):
    # given: staff who may view and cancel, not refund
    payment = paid_payment(amount=2400)
    canceler = staff("payments.view_payment", "payments.cancel_payment")
    # when
    if step == "action":
        response = choose_action(canceler, "refund_amount", [payment])
    elif step == "review":
        response = review_refund(canceler, {payment: "10"})
    else:
        response = confirm_refund_amount(canceler, {payment: 1000}, {payment: 2400})
    # then
    assert "No action selected." in messages_of(response)
    assert not Refund.objects.exists()
    assert not LogEntry.objects.exists()


# --- ask the bank now ---------------------------------------------------------------------------------------

ANSWER_LOST = "4000000000000424"  # the sandbox bank charges, and its answer never arrives: unknown


def queued_job_ids() -> list[str]:
    return django_rq.get_queue("payments").job_ids


def test_ask_bank_now_puts_an_unknown_payments_settle_job_at_the_front_and_records_who_asked(staff, make_payment):
    # given: an unknown payment, and a queue already holding another payment's job
    payment = make_payment(ANSWER_LOST)
    payment_process(payment_id=payment.pk)
    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.UNKNOWN
    other = make_payment()
    payment_enqueue(payment_id=other.pk)
    asker = staff("payments.view_payment", "payments.settle_payment", username="dave")
    # when: chosen, then confirmed
    page = choose_action(asker, "ask_bank_now", [payment])
    assert CONFIRMATION_TEMPLATE in [t.name for t in page.templates]
    assert "Ask the bank now what it did with this payment" in page.content.decode()
    assert f'name="confirmed-{payment.pk}" value="unknown"' in page.content.decode()
    assert queued_job_ids() == [f"payment-{other.pk}"]
    response = asker.post(
        reverse(CHANGELIST),
        {
            "action": "ask_bank_now",
            "post": "yes",
            "_selected_action": [str(payment.pk)],
            f"confirmed-{payment.pk}": "unknown",
        },
        follow=True,
    )
    # then: its job is first in line, on record with the staff user
    assert "Asked the bank about 1 payment(s)" in messages_of(response)[0]
    assert queued_job_ids() == [f"payment-{payment.pk}", f"payment-{other.pk}"]
    entry = LogEntry.objects.get(object_id=str(payment.pk))
    assert (entry.user, entry.change_message) == (asker.user, "Asked the bank now (it was unknown).")
    # and the job, run as a worker runs it, settles the payment with the bank's answer
    job = django_rq.get_queue("payments").fetch_job(f"payment-{payment.pk}")
    assert payment_process(payment_id=job.args[0]).status == PaymentStatus.SUCCEEDED


def test_ask_bank_now_moves_a_pending_payments_waiting_job_to_the_front_once(staff, make_payment):
    # given: a pending payment whose job waits behind two others
    first, second, payment = make_payment(), make_payment(), make_payment()
    for waiting in (first, second, payment):
        payment_enqueue(payment_id=waiting.pk)
    asker = staff("payments.view_payment", "payments.settle_payment")
    # when
    page = choose_action(asker, "ask_bank_now", [payment]).content.decode()
    asker.post(
        reverse(CHANGELIST),
        {
            "action": "ask_bank_now",
            "post": "yes",
            "_selected_action": [str(payment.pk)],
            f"confirmed-{payment.pk}": "pending",
        },
        follow=True,
    )
    # then: first in line, and in line once
    assert "Queue its job at the front now" in page
    assert queued_job_ids() == [f"payment-{payment.pk}", f"payment-{first.pk}", f"payment-{second.pk}"]


def test_ask_bank_now_takes_a_stuck_processing_payment_from_its_dead_worker_in_the_staff_users_name(
    staff, make_payment
):
    # given: a payment a worker took, and whose lease ran out (the worker died)
    payment = make_payment()
    payment_transition(payment_id=payment.pk, to_status=PaymentStatus.PROCESSING, actor=Actor.WORKER)
    Payment.objects.filter(pk=payment.pk).update(recheck_at=timezone.now() - timedelta(seconds=1))
    asker = staff("payments.view_payment", "payments.settle_payment")
    # when
    page = choose_action(asker, "ask_bank_now", [payment]).content.decode()
    response = asker.post(
        reverse(CHANGELIST),
        {
            "action": "ask_bank_now",
            "post": "yes",
            "_selected_action": [str(payment.pk)],
            f"confirmed-{payment.pk}": "processing",
        },
        follow=True,
    )
    # then: unknown, by the staff user, and its settle job queued
    assert "mark it unknown and ask the bank now" in page
    assert "Asked the bank about 1 payment(s)" in messages_of(response)[0]
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.UNKNOWN
    event = payment.events.get(to_status=PaymentStatus.UNKNOWN)
    assert (event.actor, event.actor_user) == (Actor.STAFF, asker.user)
    assert queued_job_ids() == [f"payment-{payment.pk}"]


def test_ask_bank_now_leaves_a_live_workers_payment_and_a_settled_one_alone(staff, make_payment, paid_payment):
    # given: one payment a live worker holds (lease not run out), one paid
    held = make_payment()
    payment_transition(payment_id=held.pk, to_status=PaymentStatus.PROCESSING, actor=Actor.WORKER)
    paid = paid_payment()
    asker = staff("payments.view_payment", "payments.settle_payment")
    # when
    page = choose_action(asker, "ask_bank_now", [held, paid]).content.decode()
    forged = asker.post(
        reverse(CHANGELIST),
        {
            "action": "ask_bank_now",
            "post": "yes",
            "_selected_action": [str(held.pk), str(paid.pk)],
            f"confirmed-{held.pk}": "processing",
            f"confirmed-{paid.pk}": "succeeded",
        },
        follow=True,
    )
    # then
    assert "nothing will happen" in page
    assert "a worker holds it and its lease has not run out" in page
    assert "a succeeded payment has nothing to ask the bank" in page
    assert len([m for m in messages_of(forged) if "not asked about" in m]) == 2
    assert Payment.objects.get(pk=held.pk).status == PaymentStatus.PROCESSING
    assert queued_job_ids() == []
    assert not LogEntry.objects.exists()


@pytest.mark.parametrize("step", ["action", "confirmation"])
def test_ask_bank_now_needs_settle_permission(staff, make_payment, step):
    # given: staff who may refund and cancel, but not ask the bank
    payment = make_payment()
    other = staff("payments.view_payment", "payments.refund_payment", "payments.cancel_payment")
    data = {"action": "ask_bank_now", "index": "0", "_selected_action": [str(payment.pk)]}
    if step == "confirmation":
        data |= {"post": "yes", f"confirmed-{payment.pk}": "pending"}
    # when
    response = other.post(reverse(CHANGELIST), data, follow=True)
    # then
    assert "No action selected." in messages_of(response)
    assert "ask_bank_now" not in action_names(other.get(reverse(CHANGELIST)))
    assert queued_job_ids() == []


# --- re-queue a failed job ----------------------------------------------------------------------------------


def fail_job(payment) -> str:
    """Put the payment's job in the failed job registry, as a worker leaves a job that raised."""
    queue = payments_queue()
    job = queue.create_job(PAYMENT_JOB, args=(str(payment.pk),), job_id=f"payment-{payment.pk}")
    job.save()
    queue.failed_job_registry.add(job, ttl=3600)
    return job.id


def test_requeue_failed_jobs_puts_the_failed_job_back_through_the_enqueue_path_and_records_who(staff, make_payment):
    # given: a pending payment whose job failed
    payment = make_payment()
    job_id = fail_job(payment)
    operator = staff("payments.view_payment", "payments.manage_queues", username="erin")
    queue = django_rq.get_queue("payments")
    # when
    page = choose_action(operator, "requeue_failed_jobs", [payment]).content.decode()
    assert f"Re-queue {job_id}" in page
    assert f'name="confirmed-{payment.pk}" value="{job_id}"' in page
    assert queue.failed_job_registry.get_job_ids() == [job_id]
    response = operator.post(
        reverse(CHANGELIST),
        {
            "action": "requeue_failed_jobs",
            "post": "yes",
            "_selected_action": [str(payment.pk)],
            f"confirmed-{payment.pk}": job_id,
        },
        follow=True,
    )
    # then: out of the failed registry, waiting in the queue with the options every enqueue gives it
    assert "Re-queued 1 failed job(s)." in messages_of(response)
    assert queue.failed_job_registry.get_job_ids() == []
    assert queue.job_ids == [job_id]
    job = queue.fetch_job(job_id)
    assert (job.func_name, job.args) == ("payments.jobs.payment_process_job", (str(payment.pk),))
    entry = LogEntry.objects.get(object_id=str(payment.pk))
    assert (entry.user, entry.change_message) == (operator.user, f"Re-queued failed job(s): {job_id}.")
    # and a second confirm (a double click) re-queues nothing more
    again = operator.post(
        reverse(CHANGELIST),
        {
            "action": "requeue_failed_jobs",
            "post": "yes",
            "_selected_action": [str(payment.pk)],
            f"confirmed-{payment.pk}": job_id,
        },
        follow=True,
    )
    assert any("none of its jobs is in the failed job registry" in m for m in messages_of(again))
    assert queue.job_ids == [job_id]


def test_requeue_failed_jobs_offers_nothing_for_a_payment_without_a_failed_job(staff, make_payment):
    payment = make_payment()
    operator = staff("payments.view_payment", "payments.manage_queues")
    page = choose_action(operator, "requeue_failed_jobs", [payment]).content.decode()
    assert "Cannot be re-queued: none of its jobs is in the failed job registry" in page
    assert "nothing will happen" in page


@pytest.mark.parametrize("step", ["action", "confirmation"])
def test_requeue_failed_jobs_needs_the_queue_permission(staff, make_payment, step):
    payment = make_payment()
    job_id = fail_job(payment)
    other = staff("payments.view_payment", "payments.refund_payment", "payments.settle_payment")
    data = {"action": "requeue_failed_jobs", "index": "0", "_selected_action": [str(payment.pk)]}
    if step == "confirmation":
        data |= {"post": "yes", f"confirmed-{payment.pk}": job_id}
    response = other.post(reverse(CHANGELIST), data, follow=True)
    assert "No action selected." in messages_of(response)
    assert django_rq.get_queue("payments").failed_job_registry.get_job_ids() == [job_id]


def test_an_order_page_links_to_its_payments_and_lists_their_refunds(staff, paid_payment):
    # given: an order whose payment was partly refunded
    payment = paid_payment(amount=2400)
    order = Order.objects.create(email="shopper@example.com", total=2400, currency="USD")
    Payment.objects.filter(pk=payment.pk).update(order=order)
    refund_process(refund_id=refund_create(payment_id=payment.pk, actor=Actor.API, amount=700).pk, actor=Actor.WORKER)
    viewer = staff("checkout.view_order", "payments.view_payment")
    # when
    page = viewer.get(reverse("admin:checkout_order_change", args=[order.pk])).content.decode()
    # then
    assert f'<a href="{reverse("admin:payments_payment_change", args=[payment.pk])}">{payment.pk}</a>' in page
    assert "Partially Refunded · $24.00 · Visa •••• 4242" in page
    assert "Refund $7.00 · Succeeded" in page


def test_add_order_is_refused_not_a_server_error(staff):
    editor = staff(*(f"checkout.{perm}_order" for perm in ("view", "add", "change")))
    assert editor.get(reverse("admin:checkout_order_add")).status_code == 403
    assert editor.post(reverse("admin:checkout_order_add"), {"email": "a@example.com"}).status_code == 403
    assert not Order.objects.exists()


PRODUCT_FORM = {"slug": "tea", "name": "Tea", "description": "", "price": "900", "stock": "5", "is_active": "on"}


def test_a_product_in_another_currency_than_the_shops_is_refused_in_the_admin_form(staff, settings):
    # given
    settings.SHOP_CURRENCY = "USD"
    editor = staff("checkout.view_product", "checkout.add_product", "checkout.change_product")
    # when
    refused = editor.post(reverse("admin:checkout_product_add"), {**PRODUCT_FORM, "currency": "EUR"})
    accepted = editor.post(reverse("admin:checkout_product_add"), {**PRODUCT_FORM, "currency": "USD"})
    # then
    assert refused.status_code == 200
    assert refused.context["adminform"].form.errors["currency"] == ["The shop sells in USD only; set the price in USD."]
    assert accepted.status_code == 302
    assert list(Product.objects.values_list("slug", "currency")) == [("tea", "USD")]


def test_a_new_product_starts_in_the_shops_currency_and_the_model_refuses_another(settings, db):
    settings.SHOP_CURRENCY = "EUR"
    root = User.objects.create_superuser(username="root-products", password="x")
    client = Client()
    client.force_login(root)
    form = client.get(reverse("admin:checkout_product_add")).context["adminform"].form
    assert form.initial["currency"] == "EUR"
    with pytest.raises(ValidationError) as refused:
        Product(slug="tea", name="Tea", price=900, currency="USD").full_clean()
    assert refused.value.message_dict == {"currency": ["The shop sells in EUR only; set the price in EUR."]}
    Product(slug="tea", name="Tea", price=900, currency="EUR").full_clean()
