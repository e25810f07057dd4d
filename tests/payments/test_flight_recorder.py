"""The flight recorder: job attempts, bank calls, pushes and replays recorded as they happen, and merged with the
transitions, refunds and staff actions into one timeline on the payment's admin page.

Transactional tests: the jobs are run as the worker runs them (payments.jobs, which close stale connections, and
whose transactions really commit, so that their pushes run inside the job as they do in production).
"""

from __future__ import annotations

import html
import re
import signal
import uuid
from datetime import datetime

import django_rq
import pytest
from django.contrib.auth.models import Permission, User
from django.db import DatabaseError, connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rq import SimpleWorker

from payments.gateway import get_gateway
from payments.jobs import payment_process_job, refund_process_job
from payments.models import Actor, Payment, PaymentStatus, Refund, RefundStatus
from payments.recording import GatewayCall, IdempotentReplay, JobAttempt, StatusPush
from payments.sandbox.gateway import SandboxGateway
from payments.services.payments import payment_cancel
from payments.services.refunds import refund_create
from payments.services.transitions import refund_transition
from payments.timeline import payment_timeline
from tests.api.helpers import client_for, create

pytestmark = pytest.mark.django_db(transaction=True)

TRANSIENT = "4000000000000416"  # the sandbox fails its first two charge calls (never reaching the bank)
RECORDER_TABLES = ("payments_jobattempt", "payments_gatewaycall", "payments_statuspush", "payments_idempotentreplay")


def _change_url(payment) -> str:
    return reverse("admin:payments_payment_change", args=[payment.pk])


def _staff(username: str, *perms: str) -> Client:
    user = User.objects.create_user(username=username, password="not-used-1234", is_staff=True)
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    client = Client()
    client.force_login(user)
    client.user = user
    return client


ROW = re.compile(
    r'<tr class="timeline-entry [^"]*" data-kind="(?P<kind>[^"]+)">\s*'
    r'<td class="timeline-at"><time datetime="(?P<iso>[^"]+)">(?P<at>[^<]+)</time></td>\s*'
    r'<td class="timeline-what">(?P<what>[^<]*)</td>\s*'
    r'<td class="timeline-who">(?P<who>[^<]*)</td>\s*'
    r'<td class="timeline-took">(?P<took>[^<]*)</td>\s*'
    r'<td class="timeline-detail">(?P<detail>[^<]*)</td>',
)
MILLISECONDS = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}$")


def timeline_rows(page: str) -> list[dict]:
    section = page.split('id="flight-recorder"', 1)[1].split("</section>", 1)[0]
    return [{name: html.unescape(value) for name, value in m.groupdict().items()} for m in ROW.finditer(section)]


# --- what the worker records --------------------------------------------------------------------------------


def test_a_processed_payment_has_its_job_attempt_and_its_bank_call_with_durations(make_payment):
    # given
    payment = make_payment()
    # when: its job runs as the worker runs it (the job adapter around the real service, the sandbox bank)
    outcome = payment_process_job(str(payment.pk))
    # then: one attempt, start to end, with what it left the payment in
    payment.refresh_from_db()
    assert outcome == payment.status == PaymentStatus.SUCCEEDED
    attempt = JobAttempt.objects.get(object_id=payment.pk)
    assert (attempt.kind, attempt.outcome, attempt.exception) == ("payment", "succeeded", "")
    assert attempt.finished_at >= attempt.started_at
    assert attempt.duration_ms > 0
    assert abs((attempt.finished_at - attempt.started_at).total_seconds() * 1000 - attempt.duration_ms) < 1
    # and one bank call inside it, with its latency and the bank's reference
    call = GatewayCall.objects.get(object_id=payment.pk)
    assert (call.operation, call.try_number, call.outcome) == ("charge", 1, "approved")
    assert call.reference == payment.gateway_reference
    assert call.attempt_id == attempt.pk
    assert call.duration_ms >= 0
    assert attempt.started_at <= call.started_at <= attempt.finished_at
    # and the pushes it made after each of its two transitions committed, on the attempt (no row of their own)
    assert [(push["seq"], push["ok"]) for push in attempt.pushes] == [(2, True), (3, True)]
    assert not StatusPush.objects.exists()
    # and no card data: not the token, not the number
    for row in (attempt, call):
        text = str(vars(row))
        assert payment.card_token not in text and "4242424242424242" not in text


def test_a_transient_bank_failure_shows_each_try_within_the_attempt(make_payment, settings):
    # given: the sandbox fails this card's first two charge calls before they reach the bank
    settings.PAYMENTS_GATEWAY_BACKOFF_BASE = 0.001
    payment = make_payment(TRANSIENT)
    # when
    payment_process_job(str(payment.pk))
    # then: one attempt, three bank calls: two that never reached the bank, then the charge
    attempt = JobAttempt.objects.get(object_id=payment.pk)
    assert attempt.outcome == PaymentStatus.SUCCEEDED
    calls = list(GatewayCall.objects.filter(object_id=payment.pk).order_by("started_at"))
    assert [(c.try_number, c.outcome) for c in calls] == [(1, "unavailable"), (2, "unavailable"), (3, "approved")]
    assert all(c.attempt_id == attempt.pk for c in calls)
    assert "simulated connection failure" in calls[0].error
    assert all(payment.card_token not in c.error for c in calls)
    # and the payment's page lists them, in order, inside the attempt
    page = _staff("viewer", "payments.view_payment").get(_change_url(payment)).content.decode()
    rows = timeline_rows(page)
    kinds_and_titles = [
        (row["kind"], row["what"]) for row in rows if row["kind"] in ("attempt", "gateway", "attempt-end")
    ]
    assert kinds_and_titles == [
        ("attempt", "Job attempt 1 started"),
        ("gateway", "Bank: charge (try 1) → unavailable (never reached the bank)"),
        ("gateway", "Bank: charge (try 2) → unavailable (never reached the bank)"),
        ("gateway", "Bank: charge (try 3) → approved"),
        ("attempt-end", "Job attempt 1 ended: succeeded"),
    ]


def test_a_second_job_attempt_is_recorded_after_one_whose_bank_calls_all_failed(make_payment, settings):
    # given: too few retries for the transient card: the first attempt fails the payment (nothing charged)
    settings.PAYMENTS_GATEWAY_RETRIES = 1
    settings.PAYMENTS_GATEWAY_BACKOFF_BASE = 0.001
    payment = make_payment(TRANSIENT)
    # when: the job runs, then runs again (a duplicate delivery)
    payment_process_job(str(payment.pk))
    payment_process_job(str(payment.pk))
    # then: two attempts; the first made two calls, the second found the payment final and called no one
    first, second = JobAttempt.objects.filter(object_id=payment.pk).order_by("started_at")
    assert (first.outcome, second.outcome) == ("failed", "failed")
    assert [c.outcome for c in GatewayCall.objects.filter(attempt_id=first.pk)] == ["unavailable", "unavailable"]
    assert not GatewayCall.objects.filter(attempt_id=second.pk).exists()
    assert second.pushes == []


def test_an_attempt_that_raises_is_recorded_with_its_exception_and_the_exception_goes_on(make_payment):
    # given: a job for a payment that does not exist (a stale job id)
    missing = uuid.uuid4()
    # when / then
    with pytest.raises(Payment.DoesNotExist):
        payment_process_job(str(missing))
    attempt = JobAttempt.objects.get(object_id=missing)
    assert attempt.outcome == "error"
    assert attempt.exception.startswith("DoesNotExist: Payment matching query does not exist")
    assert attempt.finished_at is not None


@pytest.fixture
def keep_signal_handlers():
    """An RQ worker installs SIGINT/SIGTERM handlers; give the test process its own back."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def test_a_real_rq_worker_records_its_name_and_the_job_id(make_payment, keep_signal_handlers):
    # given: the payment's job on the queue (enqueued after the payment committed)
    payment = make_payment()
    queue = django_rq.get_queue("payments")
    # when: an RQ worker takes it
    worker = SimpleWorker([queue], connection=queue.connection, name=f"recorder-test-{uuid.uuid4().hex[:6]}")
    worker.work(burst=True)
    # then
    attempt = JobAttempt.objects.get(object_id=payment.pk)
    assert (attempt.worker, attempt.job_id, attempt.outcome) == (worker.name, f"payment-{payment.pk}", "succeeded")


def test_a_refund_job_records_its_attempt_and_its_bank_call(make_payment):
    # given
    payment = make_payment()
    payment_process_job(str(payment.pk))
    refund = refund_create(payment_id=payment.pk, actor=Actor.STAFF, amount=1000)
    # when
    refund_process_job(str(refund.pk))
    # then
    refund.refresh_from_db()
    attempt = JobAttempt.objects.get(object_id=refund.pk)
    assert (attempt.kind, attempt.outcome) == ("refund", RefundStatus.SUCCEEDED)
    call = GatewayCall.objects.get(object_id=refund.pk)
    assert (call.operation, call.outcome, call.reference) == ("refund", "approved", refund.gateway_reference)
    # the payment's change (partially refunded) was pushed by the refund's job
    assert [push["seq"] for push in attempt.pushes] == [4]


def test_a_push_made_outside_a_job_gets_a_row_of_its_own(make_payment):
    # given
    payment = make_payment()
    # when: canceled through the API's service, in a request rather than a job
    payment_cancel(payment_id=payment.pk, actor=Actor.API)
    # then
    push = StatusPush.objects.get(payment_id=payment.pk)
    assert (push.seq, push.ok, push.actor) == (2, True, "api")


def test_a_recorder_that_cannot_write_changes_nothing_for_the_payment(make_payment, monkeypatch, caplog):
    # given: the recorder's bank-call rows cannot be written (a full disk, a table locked by a migration)
    def refuse(**fields):
        raise DatabaseError("could not extend file")

    monkeypatch.setattr(GatewayCall.objects, "create", refuse)
    payment = make_payment()
    # when
    outcome = payment_process_job(str(payment.pk))
    # then: charged and recorded as ever, the failed recorder write logged
    assert outcome == PaymentStatus.SUCCEEDED
    assert Payment.objects.get(pk=payment.pk).gateway_reference.startswith("ch_")
    assert JobAttempt.objects.get(object_id=payment.pk).outcome == PaymentStatus.SUCCEEDED
    assert "flight recorder: could not record a gateway call (DatabaseError)" in caplog.text


class ConnectionWatchingGateway(SandboxGateway):
    """The sandbox bank, noting whether the caller's thread held a database connection as each call began."""

    calls: list[tuple[str, bool]] = []

    def _note(self, name: str) -> None:
        ConnectionWatchingGateway.calls.append((name, connection.connection is not None))

    def charge(self, **kwargs):
        self._note("charge")
        return super().charge(**kwargs)

    def refund(self, **kwargs):
        self._note("refund")
        return super().refund(**kwargs)

    def refund_outcome(self, **kwargs):
        self._note("refund_outcome")
        return super().refund_outcome(**kwargs)


@pytest.fixture
def watched_gateway(settings):
    settings.PAYMENTS_GATEWAY = f"{__name__}.ConnectionWatchingGateway"
    get_gateway.cache_clear()
    ConnectionWatchingGateway.calls = []
    yield ConnectionWatchingGateway.calls
    get_gateway.cache_clear()


def test_no_bank_call_is_made_holding_a_connection_even_after_a_recorded_one(make_payment, settings, watched_gateway):
    # given: calls that follow a recorded call in the same job: the transient card's retries, and an unknown
    # refund's outcome lookup followed by the refund it decides on
    settings.PAYMENTS_GATEWAY_BACKOFF_BASE = 0.001
    payment = make_payment(TRANSIENT)
    payment_process_job(str(payment.pk))
    refund = refund_create(payment_id=payment.pk, actor=Actor.STAFF, amount=1000)
    refund_transition(refund_id=refund.pk, to_status=RefundStatus.PROCESSING, actor=Actor.WORKER)
    refund_transition(refund_id=refund.pk, to_status=RefundStatus.UNKNOWN, actor=Actor.RECONCILER)
    # when
    refund_process_job(str(refund.pk))
    # then: every call began with the thread's connection handed back
    assert watched_gateway == [
        ("charge", False),
        ("charge", False),
        ("charge", False),
        ("refund_outcome", False),
        ("refund", False),
    ]
    assert GatewayCall.objects.filter(object_id__in=[payment.pk, refund.pk]).count() == 5
    assert Refund.objects.get(pk=refund.pk).status == RefundStatus.SUCCEEDED


# --- replays, and the accept path's cost --------------------------------------------------------------------


def test_the_accept_path_writes_nothing_for_the_recorder_and_a_replay_is_one_row():
    # given
    merchant = client_for("merchant")
    # when: a payment, then the same request again (a client's retry)
    with CaptureQueriesContext(connection) as accept:
        first = create(merchant, key="order-42")
    with CaptureQueriesContext(connection) as replay:
        again = create(merchant, key="order-42")
    # then: the 202 touched no recorder table; the replay wrote its one row
    assert first.status_code == again.status_code == 202
    assert again["Idempotent-Replayed"] == "true"
    assert not [q for q in accept.captured_queries if any(t in q["sql"] for t in RECORDER_TABLES)]
    assert len([q for q in replay.captured_queries if "payments_idempotentreplay" in q["sql"]]) == 1
    recorded = IdempotentReplay.objects.get()
    assert (str(recorded.object_id), recorded.key, recorded.client_id, recorded.response_status) == (
        first.json()["id"],
        "order-42",
        merchant.user.pk,
        202,
    )


# --- the page -----------------------------------------------------------------------------------------------


def _refund_through_the_admin(client: Client, payment: Payment, amount: int):
    """The changelist's refund action, confirmed for the amount its confirmation page showed."""
    url = reverse("admin:payments_payment_changelist")
    client.post(url, {"action": "refund_in_full", "index": "0", "_selected_action": [str(payment.pk)]})
    return client.post(
        url,
        {
            "action": "refund_in_full",
            "post": "yes",
            "_selected_action": [str(payment.pk)],
            f"confirmed_amount-{payment.pk}": str(amount),
        },
        follow=True,
    )


def test_the_payment_page_shows_one_time_ordered_timeline_to_the_millisecond():
    # given: an API payment, retried once by its client, processed by the worker, refunded by a staff member
    merchant = client_for("acme-shop")
    payment = Payment.objects.get(pk=create(merchant, key="order-42").json()["id"])
    create(merchant, key="order-42")
    payment_process_job(str(payment.pk))
    desk = _staff("dana", "payments.view_payment", "payments.refund_payment")
    _refund_through_the_admin(desk, payment, 2400)
    refund = Refund.objects.get(payment=payment)
    refund_process_job(str(refund.pk))
    # when
    response = desk.get(_change_url(payment))
    # then
    assert response.status_code == 200
    rows = timeline_rows(response.content.decode())
    # to the millisecond, oldest first
    assert all(MILLISECONDS.match(row["at"]) for row in rows), [row["at"] for row in rows]
    instants = [datetime.fromisoformat(row["iso"]) for row in rows]
    assert instants == sorted(instants)
    shown = [f"{at:%Y-%m-%d %H:%M:%S}.{at.microsecond // 1000:03d}" for at in instants]
    assert [row["at"] for row in rows] == shown
    # every kind of thing that happened, each once where it happened once
    kinds = [row["kind"] for row in rows]
    assert kinds[0] == "submission"
    submission = rows[0]
    assert submission["what"] == "Submitted through the API"
    assert submission["who"] == "API client acme-shop"
    assert "Idempotency-Key: order-42" in submission["detail"] and "$24.00" in submission["detail"]
    assert kinds.count("replay") == 1
    transitions = [row["what"] for row in rows if row["kind"] == "transition"]
    assert transitions == [
        "#1 ∅ → pending",
        "#2 pending → processing",
        "#3 processing → succeeded",
        "#4 succeeded → refunded",
    ]
    refunded = next(row for row in rows if row["what"] == "#4 succeeded → refunded")
    assert refunded["who"] == "Worker (dana)"  # the worker wrote it; dana asked for it
    assert kinds.count("attempt") == kinds.count("attempt-end") == 2  # the payment's job and the refund's
    bank = [row["what"] for row in rows if row["kind"] == "gateway"]
    assert bank == ["Bank: charge (try 1) → approved", "Bank: refund (try 1) → approved"]
    assert all(row["took"].endswith(" ms") for row in rows if row["kind"] in ("gateway", "attempt-end", "push"))
    assert kinds.count("push") == 3  # processing, succeeded, refunded
    asked = next(row for row in rows if row["kind"] == "refund")
    assert asked["what"] == "Refund of $24.00 asked for" and asked["who"] == "Staff (dana)"
    assert next(row for row in rows if row["kind"] == "refund-end")["what"] == "Refund of $24.00 succeeded"
    staff_action = next(row for row in rows if row["kind"] == "staff")
    assert staff_action["who"] == "Staff (dana)"
    assert staff_action["what"] == f"Staff: Refund of $24.00 requested ({refund.pk})."
    # and the order in which they happened
    position = {kind: kinds.index(kind) for kind in set(kinds)}
    assert position["submission"] < position["replay"] < position["attempt"] < position["gateway"]
    assert position["refund"] < position["staff"]
    assert rows.index(refunded) > position["refund"]


def test_an_attempt_that_never_finished_says_so(make_payment):
    # given: a worker that died after starting the job (its attempt row has no end)
    payment = make_payment()
    JobAttempt.objects.create(
        kind="payment", object_id=payment.pk, worker="host.123-abc.01", started_at=payment.created_at
    )
    # when
    page = _staff("viewer", "payments.view_payment").get(_change_url(payment)).content.decode()
    # then
    attempt = next(row for row in timeline_rows(page) if row["kind"] == "attempt")
    assert attempt["what"] == "Job attempt 1 started, never finished"
    assert attempt["who"] == "host.123-abc.01"


def test_the_timeline_reads_as_many_queries_for_a_long_history_as_for_a_short_one(make_payment):
    # given: one payment with a single attempt, one with retries, refunds and their jobs
    short = make_payment()
    payment_process_job(str(short.pk))
    long = make_payment(amount=3000)
    payment_process_job(str(long.pk))
    payment_process_job(str(long.pk))
    for amount in (1000, 1000, 1000):
        refund_process_job(str(refund_create(payment_id=long.pk, actor=Actor.STAFF, amount=amount).pk))
    payment_timeline(payment=short)  # the content type cache warm, as in a running process
    counts = {}
    for name, payment in (("short", short), ("long", long)):
        fresh = Payment.objects.get(pk=payment.pk)
        # when
        with CaptureQueriesContext(connection) as queries:
            entries = payment_timeline(payment=fresh)
        counts[name] = (len(queries.captured_queries), len(entries))
    # then
    assert counts["short"][0] == counts["long"][0]
    assert counts["long"][1] > counts["short"][1]


@pytest.mark.parametrize("who", ["superuser", "staff with change_payment"])
def test_the_payment_page_is_read_only_and_a_post_changes_nothing(make_payment, who):
    # given
    payment = make_payment()
    payment_process_job(str(payment.pk))
    payment.refresh_from_db()
    if who == "superuser":
        client = Client()
        client.force_login(User.objects.create_superuser(username="root", password="not-used-1234"))
    else:
        client = _staff("editor", "payments.view_payment", "payments.change_payment")
    before = Payment.objects.filter(pk=payment.pk).values().get()
    # when
    page = client.get(_change_url(payment))
    response = client.post(
        _change_url(payment),
        {"status": PaymentStatus.REFUNDED, "amount_refunded": payment.amount, "description": "edited", "_save": "Save"},
        follow=True,
    )
    # then: no save button, and the POST is refused without a word of success
    content = page.content.decode()
    assert page.status_code == 200
    assert 'name="_save"' not in content and 'name="_continue"' not in content
    assert 'id="flight-recorder"' in content
    assert response.status_code == 403
    assert "changed successfully" not in response.content.decode()
    assert Payment.objects.filter(pk=payment.pk).values().get() == before
