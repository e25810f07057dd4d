"""`make chaos`'s own parts, cheaply: the product it runs, the card-data search rule, the recovery-time
definition, and that each counter sees what it is there to see (a counter that cannot go above zero proves
nothing)."""

from __future__ import annotations

import uuid

import httpx
import pytest

from bench.stack import Stack
from payments.models import Payment, Refund
from payments.sandbox.models import Charge
from payments.services.payments import payment_process
from tests.chaos import plan, recovery
from tests.chaos.clients import ClientLog, RefundRequest, Submission, Waiter, documented_503
from tests.chaos.counters import count_all
from tests.chaos.load import run_cvcs
from tests.chaos.search import CardSearch
from tests.chaos.stack import ChaosStack

VISA = plan.CARD_NUMBER["visa"]


def _answer(status, *, path="/api/v1/payments", accept="", **kwargs) -> httpx.Response:
    """An answer as httpx hands it to the clients: with the request it answers."""
    request = httpx.Request("POST", f"http://127.0.0.1{path}", headers={"Accept": accept} if accept else {})
    return httpx.Response(status, request=request, **kwargs)


def test_chaos_runs_the_product_as_it_ships_where_the_bench_adds_its_endpoints():
    # Public surfaces only: the product's settings and ASGI application, not the bench's.
    assert (ChaosStack.settings_module, ChaosStack.asgi_application) == ("config.settings", "config.asgi:application")
    assert (Stack.settings_module, Stack.asgi_application) == ("bench.settings", "bench.asgi:application")
    assert "DJANGO_SETTINGS_MODULE" not in plan.stack_env(plan.CI, faults_file="sandbox-faults")


# --- the search rule ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        f"number={VISA}",
        "card 4242 4242 4242 4242 given",
        "4242-4242-4242-4242",
        "card_number=4242+4242+4242+4242&expiry=12%2F31",
        "4242%204242%204242%204242",
        '{"card": {"cvc": "482"}}',
        "cvc=482&expiry=12/31",
        "{'cvc': '482'}",
        "the CVC 482 was typed",
        "cvc%22%3A%22482",
    ],
)
def test_the_search_finds_a_card_number_in_any_spacing_and_a_cvc_next_to_its_field(text):
    search = CardSearch(numbers={"visa": VISA}, cvcs=["482"])
    assert search.search("here", text) == 1
    assert search.search("bytes", text.encode()) == 1
    assert search.total == 2


@pytest.mark.parametrize(
    "text",
    [
        f"9{VISA}",  # inside a longer run of digits
        f"{VISA}7",
        "4242 4242 4242 424",  # one digit short
        '{"amount": 482, "id": "a482"}',  # the CVC's digits, but not as a CVC
        "cvc=4821",  # another, longer value
        "cvc=123",  # a CVC this run never typed
    ],
)
def test_the_search_ignores_what_is_not_card_data(text):
    assert CardSearch(numbers={"visa": VISA}, cvcs=["482"]).search("here", text) == 0


def test_each_run_draws_its_own_cvcs_of_both_lengths():
    first, second = run_cvcs(1), run_cvcs(2)
    assert [len(c) for c in first[3]] == [3] * 8 and [len(c) for c in first[4]] == [4] * 4
    assert "123" not in first[3] and "737" not in first[3]
    assert first != second and run_cvcs(1) == first


# --- the recovery definition --------------------------------------------------------------------------------
def _steady(rate: float, start: float, end: float, gaps=()) -> list[float]:
    times, t = [], start
    while t < end:
        if not any(low <= t < high for low, high in gaps):
            times.append(t)
        t += 1 / rate
    return times


def test_a_fault_that_stops_settling_recovers_once_the_window_is_back_at_full_rate():
    # given: 10 payments/s settled, none from 40 s to 60 s, and a backlog drained at twice the rate after
    settled = _steady(10, 0, 100, gaps=[(40, 60)]) + _steady(10, 60, 66)
    series = recovery.rate_series(settled, end=100, window=5)
    full = recovery.full_rate(series, first_fault=40, window=5)
    # when: the fault acted from 40 s to 60 s
    result = recovery.recovery(series, started=40, ended=60, limit=100, baseline=full, window=5)
    # then: the rate dipped and was back at ≥ 80 % of 10/s within a few seconds of the fault's end
    assert full == pytest.approx(10, rel=0.05)
    assert result["dipped"] and result["recovered"]
    assert 0 < result["seconds"] <= 5
    assert result["lowest_rate"] == 0


def test_a_fault_without_a_dip_recovers_in_zero_seconds_and_one_never_back_says_so():
    settled = _steady(10, 0, 100)
    series = recovery.rate_series(settled, end=100, window=5)
    assert recovery.recovery(series, started=40, ended=40, limit=70, baseline=10, window=5)["seconds"] == 0
    stopped = recovery.rate_series(_steady(10, 0, 40), end=100, window=5)
    never = recovery.recovery(stopped, started=40, ended=45, limit=70, baseline=10, window=5)
    assert never["dipped"] and not never["recovered"] and never["seconds"] == 25


# --- the counters ---------------------------------------------------------------------------------------------
def _submission(payment: Payment, card: str, *, payment_ids=None) -> Submission:
    return Submission(
        n=0, flow="api", client="merchant-a", card=card, amount=payment.amount, key=str(uuid.uuid4()),
        answer="202", payment_id=str(payment.pk), payment_ids=payment_ids or [str(payment.pk)],
    )  # fmt: skip


@pytest.fixture
def paid(make_payment, settings):
    settings.SANDBOX_LATENCY_MS = 0
    payment = make_payment(VISA)
    payment_process(payment_id=payment.pk)
    payment.refresh_from_db()
    assert payment.status == "succeeded"
    return payment


def _count(log: ClientLog, *, audit=None, unsettled=()):
    counts = count_all(
        log,
        audit=audit or {"ok": True, "checks": {}},
        card_hits=0,
        card_hit_samples=[],
        unsettled_at_deadline=list(unsettled),
    )
    return {name: count.value for name, count in counts.items()}


def test_a_clean_run_counts_zero_everywhere(paid):
    log = ClientLog()
    log.submissions.append(_submission(paid, "visa"))
    log.waiters.append(Waiter(str(paid.pk), learned="succeeded"))
    log.refunds.append(RefundRequest(str(paid.pk), "full", "r-1", None, answer="202", accepted_amount=paid.amount))
    # a refund the bank refused first frees its amount: the full refund accepted after it is no over-refund
    refused = Refund.objects.create(payment=paid, amount=paid.amount, status="failed", actor="api")
    log.refunds.append(
        RefundRequest(
            str(paid.pk), "full", "r-0", None, answer="202", refund_id=str(refused.pk), accepted_amount=paid.amount
        )
    )
    log.observe("POST /api/v1/payments", httpx.Response(202))
    log.observe(
        "POST /api/v1/payments",
        _answer(503, headers={"Retry-After": "1"}, json={"code": "service_unavailable"}),
    )
    assert set(_count(log).values()) == {0}


def test_each_counter_sees_what_it_counts(paid, make_payment, settings):
    # given: a client log and a database holding one of each kind of trouble
    log = ClientLog()
    ghost = str(uuid.uuid4())
    log.submissions.append(_submission(paid, "declined", payment_ids=[str(paid.pk), ghost]))  # lost, twice, wrong
    log.waiters.append(Waiter(str(uuid.uuid4())))  # never learned
    failed = make_payment("4000000000000002")
    payment_process(payment_id=failed.pk)
    log.waiters.append(Waiter(str(failed.pk), learned="succeeded"))  # the socket said paid, the database failed
    log.refunds.append(RefundRequest(str(paid.pk), "60%+60%", "r-1", 1, answer="202", accepted_amount=paid.amount))
    log.refunds.append(RefundRequest(str(paid.pk), "60%+60%", "r-2", 1, answer="202", accepted_amount=1))
    log.refunds.append(RefundRequest(str(paid.pk), "full", "r-3", None, answer="gave up"))
    log.observe("GET status", _answer(500, text="boom"))
    log.observe("POST /checkout", _answer(503, path="/checkout", text="no Retry-After, no problem document"))
    log.strange("POST /cart/add", "403 CSRF")
    # the bank took money for the payment we show as failed
    Charge.objects.filter(idempotency_key=f"payment-{failed.pk}").update(approved=True)
    audit = {"ok": False, "checks": {"ledger_matches": {"violations": [{"account": 1}]}}}

    # when
    counts = _count(
        log, audit=audit, unsettled=[f"payment {uuid.uuid4()} processing", f"refund {uuid.uuid4()} unknown"]
    )

    # then
    assert counts == {
        "lost": 1,
        "charged_twice": 1,  # one API key answered with two payment ids
        "charged_not_paid": 1,
        "refunds_over_capture": 1,
        "not_final": 2,
        "wrong_outcome": 1,  # a declined card's payment succeeded
        "ws_never_learned": 1,
        "ws_disagrees": 1,
        "server_errors": 2,
        "unexpected_answers": 1,
        "gave_up": 1,
        "audit": 1,
        "card_data": 0,
    }


def test_a_503_is_documented_only_with_retry_after_and_the_body_the_client_asked_for():
    problem = {"code": "service_unavailable"}
    busy = {"Retry-After": "5"}
    # the API, and a client that asked for JSON: the problem document
    assert documented_503(_answer(503, headers=busy, json=problem))
    assert documented_503(_answer(503, path="/checkout", accept="application/json", headers=busy, json=problem))
    assert not documented_503(_answer(503, json=problem))
    assert not documented_503(_answer(503, headers=busy, text="<h1>busy</h1>"))
    assert not documented_503(_answer(503, path="/checkout", accept="application/json", headers=busy, html="<h1>"))
    assert not documented_503(_answer(500, headers=busy, json=problem))
    # a browser's form: the shop's 503 page
    assert documented_503(_answer(503, path="/cart/add", headers=busy, html="<h1>Busy</h1>"))
    assert not documented_503(_answer(503, path="/cart/add", html="<h1>Busy</h1>"))


def test_the_schedules_fire_every_fault_and_the_stall_and_stop_outlast_every_timer():
    for profile in plan.PROFILES.values():
        assert {fault.kind for fault in profile.faults} == set(plan.FAULT_KINDS)
        timers = profile.timers
        db_timers = [
            float(profile.env.get("DATABASE_STATEMENT_TIMEOUT_MS", 30000)) / 1000,
            float(profile.env.get("DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS", 60000)) / 1000,
            5.0,  # lock_timeout
        ]
        stall = next(f for f in profile.faults if f.kind == plan.DB_STALL)
        assert stall.duration > max([*timers.values(), *db_timers])
        stop = next(f for f in profile.faults if f.kind == plan.WORKER_SIGSTOP)
        assert stop.duration > timers["PAYMENTS_PROCESSING_LEASE"] > timers["PAYMENTS_JOB_TIMEOUT"]
        starts = sorted(profile.faults, key=lambda f: f.at)
        assert all(a.ends_at <= b.at for a, b in zip(starts, starts[1:], strict=False)), "faults must not overlap"
    assert plan.FULL.payments >= 5000 and plan.FULL.concurrency >= 32 and plan.CI.concurrency >= 32
