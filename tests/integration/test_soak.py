"""Issue 3's "done when": hundreds of mixed payments while worker processes are killed at random, then every
payment is final, the audit passes, and no card number is anywhere.

SOAK_PAYMENTS sets the count (default 500).
"""

import json
import os
import random
import signal
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from checkout.models import Product
from payments.models import UNSETTLED_STATUSES, Payment, PaymentEvent
from tests.conftest import wait_until
from tests.integration.shop import Shopper
from tests.integration.test_slice import _all_database_text, _all_redis_bytes

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

SOAK_PAYMENTS = int(os.environ.get("SOAK_PAYMENTS", "500"))
SUBMITTERS = 8
WORKERS = 3
# (card, weight): approvals, each decline, the risk block, transient errors, lost answers and slow calls.
CARD_MIX = [
    ("4242424242424242", 30), ("5555555555554444", 12), ("378282246310005", 8),
    ("4000000000000002", 8), ("4000000000009995", 5), ("4000000000000069", 3), ("4000000000000127", 3),
    ("4000000000009987", 2), ("4000000000009979", 2), ("4100000000000019", 5),
    ("4000000000000416", 10), ("4000000000000424", 7), ("4000000000000440", 5),
]  # fmt: skip
EXPECTED_FAILURES = {
    "4000000000000002": "card_declined", "4000000000009995": "insufficient_funds",
    "4000000000000069": "expired_card", "4000000000000127": "incorrect_cvc", "4000000000009987": "lost_card",
    "4000000000009979": "stolen_card", "4100000000000019": "fraudulent",
}  # fmt: skip


class WorkerKiller(threading.Thread):
    """SIGKILLs a random worker every few hundred milliseconds and starts a fresh one in its place."""

    def __init__(self, stack, workers):
        super().__init__(daemon=True)
        self.stack, self.workers, self.kills = stack, workers, 0
        self.stopped = threading.Event()

    def run(self):
        rng = random.Random(1234)  # noqa: S311 - chaos, not crypto
        while not self.stopped.wait(rng.uniform(0.3, 0.9)):
            victim = rng.randrange(len(self.workers))
            self.workers[victim].send_signal(signal.SIGKILL)
            self.workers[victim].wait()
            self.kills += 1
            self.workers[victim] = self.stack.start_worker()


def test_hundreds_of_mixed_payments_survive_killed_workers(live_stack_factory, redis_client):
    # given: a stack whose recovery clocks are short, three workers and a reconciler
    product = Product.objects.create(slug="soak", name="Soak test item", price=1999, currency="USD", stock=100_000)
    stack = live_stack_factory(
        SANDBOX_LATENCY_MS="30", SANDBOX_LATENCY_JITTER_MS="20", SANDBOX_SLOW_CARD_MS="1500",
        PAYMENTS_PENDING_GRACE="3", PAYMENTS_PROCESSING_LEASE="4", PAYMENTS_SETTLE_RETRY="2",
        PAYMENTS_GATEWAY_BACKOFF_BASE="0.05", PAYMENTS_JOB_TIMEOUT="20", RISK_VELOCITY_MAX="1000000",
    )  # fmt: skip
    workers = [stack.start_worker() for _ in range(WORKERS)]
    stack.start_reconciler(interval=0.5)
    rng = random.Random(42)  # noqa: S311
    cards = rng.choices([c for c, _ in CARD_MIX], weights=[w for _, w in CARD_MIX], k=SOAK_PAYMENTS)
    killer = WorkerKiller(stack, workers)

    # when: shoppers pay concurrently while workers keep dying
    def submit_share(share: list[str]) -> list[tuple[str, str]]:
        shopper = Shopper(stack.http_url, product.pk)
        try:
            return [(shopper.pay(card)["payment_id"], card) for card in share]
        finally:
            shopper.close()

    killer.start()
    with ThreadPoolExecutor(SUBMITTERS) as pool:
        shares = [cards[i::SUBMITTERS] for i in range(SUBMITTERS)]
        submitted = [pair for result in pool.map(submit_share, shares) for pair in result]
    time.sleep(3)  # keep killing for a while after the last submit
    killer.stopped.set()
    killer.join()

    # then: every payment reaches a final state
    assert len(submitted) == SOAK_PAYMENTS
    try:
        wait_until(
            lambda: not Payment.objects.filter(status__in=UNSETTLED_STATUSES).exists(),
            timeout=240,
            interval=1,
            message="every payment to be final",
        )
    except AssertionError:
        stuck = list(Payment.objects.filter(status__in=UNSETTLED_STATUSES).values_list("id", "status", "recheck_at"))
        pytest.fail(f"{len(stuck)} payments never settled, e.g. {stuck[:5]}\n{stack.logs()[-6000:]}")
    assert killer.kills >= 5, "the soak must really kill workers"

    # and each card ended as it should
    final = dict(Payment.objects.values_list("id", "status"))
    declines = dict(Payment.objects.values_list("id", "decline_code"))
    outcomes = Counter()
    for payment_id, card in submitted:
        status = final[uuid.UUID(payment_id)]
        outcomes[status] += 1
        if card in EXPECTED_FAILURES:
            assert (status, declines[uuid.UUID(payment_id)]) == ("failed", EXPECTED_FAILURES[card]), card
        else:
            assert status == "succeeded", (card, status)

    # and the books balance: nothing charged twice, the bank's ledger matches ours
    audit = stack.manage("payments_audit")
    report = json.loads(audit.stdout)
    assert audit.returncode == 0 and report["ok"], audit.stdout[-3000:]
    assert report["payments"] == SOAK_PAYMENTS

    # and no card number is anywhere: database, Redis (job payloads included), any process's log
    database, redis_dump, logs = _all_database_text(), _all_redis_bytes(redis_client), stack.logs()
    for card, _ in CARD_MIX:
        assert card not in database
        assert card.encode() not in redis_dump
        assert card not in logs
    recovered = PaymentEvent.objects.filter(actor="reconciler").count()
    print(
        f"soak: {SOAK_PAYMENTS} payments, {killer.kills} workers killed, {recovered} taken over by the reconciler, "
        f"outcomes {dict(outcomes)}"
    )
