"""/readyz and /metrics asked of real processes (issue 14, items 4 and 5): daphne, RQ worker processes, a Redis of
the test's own that is paused with SIGSTOP. /metrics, served by daphne, adds up what the workers counted
(prometheus-client's multiprocess mode, PROMETHEUS_MULTIPROC_DIR)."""

from __future__ import annotations

import json
import os
import signal
import time
import uuid

import httpx
import pytest
from django.contrib.auth import get_user_model
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.authtoken.models import Token
from websockets.sync.client import connect

from infrastructure.embedded_redis import start_embedded_redis
from payments.models import Payment
from tests.conftest import VISA_OK, wait_until
from tests.integration.shop import Shopper

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

METRICS_TOKEN = "metrics-token-for-tests-0123456789abcdef"
BODY = {"amount": 2400, "currency": "USD", "card": {"number": VISA_OK, "exp_month": 12, "exp_year": 2030, "cvc": "123"}}


def scrape(stack) -> dict[tuple, float]:
    response = httpx.get(f"{stack.http_url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=10)
    assert response.status_code == 200, response.text
    return {
        (sample.name, *sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def readyz(stack) -> httpx.Response:
    return httpx.get(f"{stack.http_url}/readyz", timeout=15)


def test_metrics_served_by_daphne_add_up_what_every_process_counted(live_stack_factory, product, tmp_path):
    # given: daphne and, later, a worker process, writing their metrics to one directory
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    stack = live_stack_factory(PROMETHEUS_MULTIPROC_DIR=str(metrics_dir), METRICS_TOKEN=METRICS_TOKEN)
    token = Token.objects.create(user=get_user_model().objects.create_user("metrics-merchant")).key
    api = {"Authorization": f"Token {token}", "Idempotency-Key": str(uuid.uuid4())}
    assert httpx.get(f"{stack.http_url}/metrics", timeout=10).status_code == 401

    # when: a payment through the API (sent twice with its key), one through the checkout, and a socket waiting
    first = httpx.post(f"{stack.http_url}/api/v1/payments", json=BODY, headers=api, timeout=30)
    again = httpx.post(f"{stack.http_url}/api/v1/payments", json=BODY, headers=api, timeout=30)
    assert (first.status_code, again.status_code) == (202, 202), first.text
    assert again.headers["Idempotent-Replayed"] == "true"
    shop = Shopper(stack.http_url, product.pk).pay(VISA_OK)
    with connect(shop["payment"]["links"]["websocket"]) as socket:
        assert json.loads(socket.recv(timeout=10))["payment"]["status"] == "pending"
        waiting = scrape(stack)
        worker = stack.start_worker()
        ids = [first.json()["id"], shop["payment_id"]]
        wait_until(
            lambda: set(Payment.objects.filter(pk__in=ids).values_list("status", flat=True)) == {"succeeded"},
            timeout=60,
            message="the worker to settle both payments",
        )
        wait_until(lambda: scrape(stack).get(("payments_settled_total", ("outcome", "succeeded"))) == 2, timeout=10)
    wait_until(lambda: scrape(stack).get(("payments_websocket_connections",)) == 0, timeout=10, message="socket gone")
    after = scrape(stack)

    # then: daphne's own counts
    assert waiting[("payments_websocket_connections",)] == 1
    assert after[("payments_accepted_total", ("channel", "api"))] == 1
    assert after[("payments_accepted_total", ("channel", "web"))] == 1
    assert after[("payments_idempotent_replays_total",)] == 1
    assert after[("payments_gateway_call_seconds_count", ("call", "tokenize"))] == 2  # a replay asks no vault
    # and the worker's, counted in another process
    assert (metrics_dir / f"counter_{worker.pid}.db").exists()
    assert after[("payments_settled_total", ("outcome", "succeeded"))] == 2
    assert after[("payments_processing_seconds_count", ("outcome", "succeeded"))] == 2
    assert after[("payments_end_to_end_seconds_count", ("outcome", "succeeded"))] == 2
    assert after[("payments_gateway_call_seconds_count", ("call", "charge"))] == 2
    assert after[("payments_pushes_total", ("result", "sent"))] >= 4  # processing, then succeeded, for each
    # and the queue's, read from Redis at the scrape
    assert after[("payments_queue_redis_up",)] == 1
    assert after[("payments_queue_jobs",)] == 0
    assert after[("payments_workers_live",)] == 4  # the worker process's threads (tests/conftest.py)


def test_readyz_turns_503_within_seconds_of_redis_paused_and_200_once_it_resumes(live_stack_factory):
    # given: a stack on a Redis of its own, no worker yet
    server, redis_url = start_embedded_redis(None)
    stack = None
    try:
        stack = live_stack_factory(REDIS_URL=redis_url)
        no_worker = readyz(stack)
        assert no_worker.status_code == 503 and no_worker.json()["failing"] == ["workers"], no_worker.text
        stack.start_worker()
        wait_until(lambda: readyz(stack).status_code == 200, timeout=30, message="/readyz 200 with a worker")

        # when: Redis stops answering
        os.kill(server.process.pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            paused = readyz(stack)
            waited = time.monotonic() - started
        finally:
            os.kill(server.process.pid, signal.SIGCONT)

        # then: 503 naming redis, within seconds; and 200 again once it answers
        print(f"/readyz answered {paused.status_code} in {waited:.2f} s with Redis paused")
        assert waited < 5, f"/readyz took {waited:.1f} s with Redis paused"
        assert paused.status_code == 503, paused.text
        assert "redis" in paused.json()["failing"]
        wait_until(lambda: readyz(stack).status_code == 200, timeout=30, message="/readyz 200 after the pause")
    finally:
        if stack is not None:
            stack.stop()  # before its Redis goes
        server.stop()
