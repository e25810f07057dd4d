"""Receipts and refund notices: recorded with the status change, sent by a job after it commits, at most once."""

import smtplib
from datetime import timedelta

import django_rq
import pytest
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend as LocmemBackend
from django.db import transaction
from django.utils import timezone

from checkout.models import Order, Product, ShopperEmail, ShopperEmailKind, ShopperEmailStatus
from checkout.order_links import order_page_path
from checkout.outbox import email_job_id, shopper_email_send_job
from checkout.receipts import shopper_email_record
from payments.events import PAYMENT, StatusChange
from payments.models import Actor, Payment, PaymentStatus
from payments.services.dispatch import side_queue
from payments.services.payments import payment_process
from payments.services.reconcile import payments_reconcile
from payments.services.refunds import refund_create, refund_process
from payments.services.transitions import payment_transition
from tests.integration.shop import checkout_form

pytestmark = pytest.mark.django_db(transaction=True)

OK_CARD = "4242 4242 4242 4242"


@pytest.fixture
def product(db):
    # A name that HTML must escape, and a text part must not.
    return Product.objects.create(slug="beans", name="Beans & <Co>", price=1200, currency="USD", stock=10)


def _checkout(client, product, quantity=2) -> Payment:
    client.post("/cart/add", {"product_id": product.pk, "quantity": quantity})
    response = client.post("/checkout", checkout_form(OK_CARD, cvc="123"), HTTP_ACCEPT="application/json")
    assert response.status_code == 202, response.content
    return Payment.objects.get(pk=response.json()["payment_id"])


def _paid(client, product) -> Payment:
    payment = _checkout(client, product)
    payment_process(payment_id=payment.pk)
    return Payment.objects.get(pk=payment.pk)


def _queued_email_jobs() -> list[str]:
    return django_rq.get_queue("emails").job_ids


def _due_now(email: ShopperEmail) -> None:
    ShopperEmail.objects.filter(pk=email.pk).update(recheck_at=timezone.now() - timedelta(seconds=1))


@pytest.fixture(autouse=True)
def fresh_emails_queue():
    side_queue.cache_clear()
    yield
    side_queue.cache_clear()


def test_a_successful_payment_records_one_receipt_with_its_change_and_queues_its_job(client, product):
    # when
    payment = _paid(client, product)
    # then
    email = ShopperEmail.objects.get()
    assert (email.kind, email.key, email.status) == (ShopperEmailKind.RECEIPT, f"receipt:{payment.pk}", "queued")
    assert (email.order_id, email.to) == (payment.order_id, "ada@example.com")
    assert _queued_email_jobs() == [email_job_id(email.pk)]
    assert mail.outbox == []  # nothing is sent by the change itself


def test_no_receipt_when_the_status_change_rolls_back(client, product):
    # given
    payment = _checkout(client, product)
    payment_transition(payment_id=payment.pk, to_status=PaymentStatus.PROCESSING, actor=Actor.WORKER)
    # when: the success is written, then its transaction rolls back
    with pytest.raises(RuntimeError), transaction.atomic():
        payment_transition(payment_id=payment.pk, to_status=PaymentStatus.SUCCEEDED, actor=Actor.WORKER)
        assert ShopperEmail.objects.count() == 1  # written in the change's own transaction
        raise RuntimeError("the transaction dies")
    # then
    assert ShopperEmail.objects.count() == 0
    assert _queued_email_jobs() == []


def test_a_failed_payment_owes_no_email(client, product):
    # given
    client.post("/cart/add", {"product_id": product.pk})
    response = client.post("/checkout", checkout_form("4000 0000 0000 0002", cvc="123"), HTTP_ACCEPT="application/json")
    # when
    payment_process(payment_id=response.json()["payment_id"])
    # then
    assert ShopperEmail.objects.count() == 0


def test_a_payment_made_through_the_api_owes_no_shop_email(make_payment):
    # when
    payment = payment_process(payment_id=make_payment().pk)
    # then
    assert payment.status == PaymentStatus.SUCCEEDED
    assert ShopperEmail.objects.count() == 0


def test_the_job_sends_one_receipt_with_text_and_html_parts(client, product):
    # given
    payment = _paid(client, product)
    email = ShopperEmail.objects.get()
    order = Order.objects.get(pk=payment.order_id)
    # when
    assert shopper_email_send_job(email.pk) == ShopperEmailStatus.SENT
    # then
    (message,) = mail.outbox
    assert message.to == ["ada@example.com"]
    assert message.subject == f"Your Roastery receipt, order {order.number}"
    link = "https://shop.test" + order_page_path(order)
    text = message.body
    for expected in ("Beans & <Co> × 2: $24.00", "Total: $24.00", "Visa ending in 4242", "Ada Lovelace, London", link):
        assert expected in text
    ((html, mimetype),) = message.alternatives
    assert mimetype == "text/html"
    for expected in ("Beans &amp; &lt;Co&gt; × 2", "$24.00", "Visa ending in 4242", f'href="{link}"'):
        assert expected in html
    assert "<Co>" not in html
    email.refresh_from_db()
    assert (email.status, email.attempts, email.sent_at is not None) == ("sent", 1, True)


def test_a_replayed_event_makes_no_second_email(client, product):
    # given: the receipt was sent
    payment = _paid(client, product)
    email = ShopperEmail.objects.get()
    shopper_email_send_job(email.pk)
    # when: the same status change is delivered again, and its job runs again (queued twice, or by the reconciler)
    replay = StatusChange(
        kind=PAYMENT,
        object_id=str(payment.pk),
        payment_id=str(payment.pk),
        order_id=payment.order_id,
        from_status=PaymentStatus.PROCESSING,
        to_status=PaymentStatus.SUCCEEDED,
        seq=payment.seq,
        actor=Actor.WORKER,
        document={},
    )
    with transaction.atomic():
        shopper_email_record(sender=StatusChange, change=replay)
    assert shopper_email_send_job(email.pk) == ShopperEmailStatus.SENT
    # then
    assert ShopperEmail.objects.count() == 1
    assert len(mail.outbox) == 1


class MailServerDown(LocmemBackend):
    """The mail server refuses connections `failures` times, then takes every email."""

    failures = 0

    def open(self):
        if MailServerDown.failures > 0:
            MailServerDown.failures -= 1
            raise ConnectionRefusedError(111, "Connection refused")
        return super().open()


class DropsMidMessage(LocmemBackend):
    """The connection drops while the message is handed over: the server may or may not have taken it."""

    def send_messages(self, messages):
        raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")


def test_a_mail_server_that_is_down_is_tried_again_later_and_the_email_sent_once(client, product, settings):
    # given: the mail server refuses the first try
    settings.EMAIL_BACKEND = "tests.checkout.test_receipts.MailServerDown"
    MailServerDown.failures = 1
    _paid(client, product)
    email = ShopperEmail.objects.get()
    # when
    assert shopper_email_send_job(email.pk) == ShopperEmailStatus.QUEUED
    # then: queued again, for later, with what went wrong
    email.refresh_from_db()
    assert (email.status, email.attempts, mail.outbox) == ("queued", 1, [])
    assert "ConnectionRefusedError" in email.last_error
    assert email.recheck_at > timezone.now()
    django_rq.get_queue("emails").empty()
    assert payments_reconcile().get("shopper_emails_requeued") is None  # not before its time
    # when: its time comes, the reconciler queues it and the job sends it
    _due_now(email)
    assert payments_reconcile()["shopper_emails_requeued"] == 1
    assert _queued_email_jobs() == [email_job_id(email.pk)]
    assert shopper_email_send_job(email.pk) == ShopperEmailStatus.SENT
    assert shopper_email_send_job(email.pk) == ShopperEmailStatus.SENT
    # then
    assert len(mail.outbox) == 1
    email.refresh_from_db()
    assert (email.status, email.attempts, email.last_error) == ("sent", 2, "")


def test_an_email_the_mail_server_never_takes_fails_after_its_attempts(client, product, settings):
    # given
    settings.EMAIL_BACKEND = "tests.checkout.test_receipts.MailServerDown"
    settings.EMAIL_SEND_ATTEMPTS = 3
    MailServerDown.failures = 100
    _paid(client, product)
    email = ShopperEmail.objects.get()
    # when
    statuses = [shopper_email_send_job(email.pk) for _ in range(4)]
    # then
    assert statuses == ["queued", "queued", "failed", "failed"]
    email.refresh_from_db()
    assert (email.status, email.attempts) == ("failed", 3)
    _due_now(email)
    assert payments_reconcile().get("shopper_emails_requeued") is None


def test_an_email_that_may_have_reached_the_server_is_never_sent_again(client, product, settings):
    # given: the connection drops while the message is handed over
    settings.EMAIL_BACKEND = "tests.checkout.test_receipts.DropsMidMessage"
    _paid(client, product)
    email = ShopperEmail.objects.get()
    # when
    assert shopper_email_send_job(email.pk) == ShopperEmailStatus.SENDING
    # then: left in sending, for staff to see; neither the reconciler nor another run sends it again
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    _due_now(email)
    django_rq.get_queue("emails").empty()
    assert payments_reconcile().get("shopper_emails_requeued") is None
    assert shopper_email_send_job(email.pk) == ShopperEmailStatus.SENDING
    assert mail.outbox == []
    email.refresh_from_db()
    assert (email.status, email.attempts) == ("sending", 1)
    assert "SMTPServerDisconnected" in email.last_error


def test_an_email_whose_job_was_lost_is_queued_again_by_the_reconciler(client, product, settings):
    # given: Redis does not answer when the payment's success commits
    settings.RQ_QUEUES = {**settings.RQ_QUEUES, "emails": {"URL": "redis://127.0.0.1:1/7"}}
    side_queue.cache_clear()
    _paid(client, product)
    email = ShopperEmail.objects.get()
    settings.RQ_QUEUES = {**settings.RQ_QUEUES, "emails": {"URL": settings.REDIS_URL}}
    side_queue.cache_clear()
    assert _queued_email_jobs() == []
    # when: its grace is over
    _due_now(email)
    done = payments_reconcile()
    # then
    assert done["shopper_emails_requeued"] == 1
    assert _queued_email_jobs() == [email_job_id(email.pk)]
    assert shopper_email_send_job(email.pk) == ShopperEmailStatus.SENT
    assert len(mail.outbox) == 1


def test_a_refund_sends_a_notice_with_what_was_refunded_and_what_is_still_paid(client, product):
    # given: a paid order ($24.00), its receipt sent
    payment = _paid(client, product)
    shopper_email_send_job(ShopperEmail.objects.get().pk)
    # when: $10.00 is refunded, then the rest
    first = refund_process(
        refund_id=refund_create(payment_id=payment.pk, actor=Actor.STAFF, amount=1000).pk, actor=Actor.WORKER
    )
    notice = ShopperEmail.objects.get(key=f"refund:{first.pk}")
    assert notice.kind == ShopperEmailKind.REFUND_NOTICE
    assert _queued_email_jobs()[-1] == email_job_id(notice.pk)
    shopper_email_send_job(notice.pk)
    rest = refund_process(refund_id=refund_create(payment_id=payment.pk, actor=Actor.STAFF).pk, actor=Actor.WORKER)
    shopper_email_send_job(ShopperEmail.objects.get(key=f"refund:{rest.pk}").pk)
    # then
    receipt, partial, full = mail.outbox
    assert "refund" in partial.subject
    assert "has refunded $10.00" in partial.body
    assert "Still paid for this order: $14.00" in partial.body
    assert "Visa ending in 4242" in partial.body
    assert "https://shop.test/orders/" in partial.body
    assert "has refunded $14.00" in full.body
    assert "refunded in full" in full.body
    assert "refunded in full" in full.alternatives[0][0]
    assert ShopperEmail.objects.count() == 3


def test_staff_see_the_outbox_in_the_admin_and_cannot_change_it(client, product, admin_client):
    # given
    payment = _paid(client, product)
    email = ShopperEmail.objects.get()
    # when
    listing = admin_client.get("/admin/checkout/shopperemail/")
    change = admin_client.post(f"/admin/checkout/shopperemail/{email.pk}/change/", {"status": "sent"})
    # then
    assert listing.status_code == 200
    assert Order.objects.get(pk=payment.order_id).number in listing.content.decode()
    assert change.status_code == 403
    email.refresh_from_db()
    assert email.status == ShopperEmailStatus.QUEUED
