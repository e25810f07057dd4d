"""A Redis that stops answering (paused, a stalled host) must not hold the accept path: the payment is recorded
and answered 202, its enqueue given up after a bounded wait and left to the reconciler. Found by `make chaos`
(docs/reliability.md): django-rq's connection had no socket timeout, so during a Redis pause every payment and
refund request waited for Redis with its thread and database connection, and clients timed out and retried."""

import os
import signal
import threading
import time

import pytest
from django.db import connection

from payments.models import Payment, PaymentStatus
from tests.api.helpers import create


@pytest.mark.django_db(transaction=True)
def test_a_payment_is_accepted_while_the_queue_redis_is_paused(api, paused_queue_redis):
    # when: a client pays while the queue's Redis does not answer
    answers = []

    def pay():
        try:
            answers.append(create(api))
        finally:
            connection.close()  # the thread's own connection, before the test database is flushed

    request = threading.Thread(target=pay, daemon=True)
    started = time.monotonic()
    request.start()
    request.join(timeout=15)
    waited = time.monotonic() - started
    if request.is_alive():  # let the stuck request finish before the test's database goes away
        os.kill(paused_queue_redis.process.pid, signal.SIGCONT)
        request.join(timeout=10)
    # then: it is answered within the enqueue's bound and recorded
    # Two short commands (the load-shedding count, the enqueue) of 1 s each; redis-py's own 5 s default made it
    # 10 s, past a client's usual timeout.
    assert waited < 5, f"the request waited {waited:.1f} s for the paused Redis"
    assert answers[0].status_code == 202, answers[0].content
    payment = Payment.objects.get(pk=answers[0].json()["id"])
    assert payment.status == PaymentStatus.PENDING  # for the reconciler to queue once Redis is back
