"""Staff actions in the admin: who may refund or cancel, the confirmation before money moves, and who did it.

Every test drives the real admin through the test client, logged in as a real staff user holding real
permissions; refunds run against the sandbox bank the way the worker runs them.
"""

from __future__ import annotations

import django_rq
import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from checkout.models import Order, OrderStatus
from payments.admin import MAX_PAYMENTS_PER_ACTION
from payments.models import Actor, Payment, PaymentStatus, Refund, RefundStatus
from payments.sandbox.models import Charge
from payments.services.payments import payment_process
from payments.services.refunds import refund_create, refund_process
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
