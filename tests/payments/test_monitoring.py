"""/healthz, /readyz and /metrics in this process (issue 14, items 4 and 5); tests/integration/test_monitoring_live.py
asks them of real daphne and worker processes."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from prometheus_client import REGISTRY

from payments.models import Actor, Payment, PaymentStatus
from payments.services.dispatch import payments_queue
from payments.services.payments import payment_cancel, payment_process
from tests.conftest import VISA_DECLINED

METRICS_TOKEN = "metrics-token-for-tests-0123456789abcdef"
# An instance's own address, as a load balancer asks it: not one of ALLOWED_HOSTS.
INSTANCE_HOST = "10.1.2.3:8000"


def sample(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def production_middleware(settings):
    """What a load balancer meets in production: HTTPS redirect on, its Host not allowed."""
    settings.SECURE_SSL_REDIRECT = True
    settings.ALLOWED_HOSTS = ["shop.example.com"]


# --- /healthz ---------------------------------------------------------------------------------------------------


def test_healthz_answers_without_the_database_or_a_session(production_middleware):
    # given: no database access allowed at all (no `db` fixture: any query fails the test), production's
    # middleware, a probe by the instance's address over plain HTTP
    # when
    response = Client().get("/healthz", HTTP_HOST=INSTANCE_HOST)
    # then: 200 JSON, not a 301 to HTTPS or a 400 for the Host, no cookie set, never cached
    assert response.status_code == 200, response.content
    assert response.json() == {"status": "ok"}
    assert response["Cache-Control"] == "no-store"
    assert not response.cookies


def test_the_probe_paths_are_exact(production_middleware, db):
    # /healthz/ is not the probe: it takes the ordinary way (here the HTTPS redirect)
    response = Client().get("/healthz/", HTTP_HOST="shop.example.com")
    assert response.status_code == 301


# --- /readyz ----------------------------------------------------------------------------------------------------


@pytest.fixture
def live_worker(redis_client):
    """One registered, idle RQ worker of the payments queue, as a worker thread registers itself."""
    from infrastructure.overrides.rq_worker import ThreadWorker

    worker = ThreadWorker([payments_queue()], connection=payments_queue().connection, name="readyz-test.1")
    worker.register_birth()
    worker.heartbeat()
    yield worker
    worker.register_death()


@pytest.mark.django_db(transaction=True)
def test_readyz_is_200_with_the_database_redis_a_live_worker_and_a_short_queue(production_middleware, live_worker):
    response = Client().get("/readyz", HTTP_HOST=INSTANCE_HOST)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ok" and body["failing"] == []
    assert body["checks"] == {name: {"ok": True} for name in ("database", "redis", "workers", "queue")}


@pytest.mark.django_db(transaction=True)
def test_readyz_is_503_naming_the_workers_when_none_is_alive(redis_client):
    # given: no worker registered (every test starts with an empty Redis)
    response = Client().get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["workers"]
    assert body["checks"]["workers"] == {"ok": False, "detail": "no live worker"}


@pytest.mark.django_db(transaction=True)
def test_a_worker_whose_heartbeat_stopped_is_not_alive(live_worker, redis_client):
    # given: a worker killed while idle: its key stays for minutes, its heartbeat stops
    redis_client.hset(live_worker.key, "last_heartbeat", "2020-01-01T00:00:00.000000Z")
    body = Client().get("/readyz").json()
    assert body["failing"] == ["workers"]


@pytest.mark.django_db(transaction=True)
def test_readyz_is_503_naming_the_queue_over_its_backlog_limit(settings, live_worker, make_payment):
    # given: more jobs waiting than PAYMENTS_MAX_BACKLOG, where the API starts shedding new payments
    settings.PAYMENTS_MAX_BACKLOG = 1
    for _ in range(2):
        make_payment()  # committed, so queued
    assert payments_queue().count == 2
    body = Client().get("/readyz").json()
    assert body["failing"] == ["queue"]
    assert body["checks"]["queue"]["ok"] is False


@pytest.mark.django_db(transaction=True)
def test_readyz_is_503_naming_redis_within_seconds_when_redis_is_paused(paused_queue_redis):
    started = time.monotonic()
    response = Client().get("/readyz")
    waited = time.monotonic() - started
    assert waited < 3, f"/readyz waited {waited:.1f} s for a paused Redis"
    assert response.status_code == 503
    body = response.json()
    assert "redis" in body["failing"]
    assert body["checks"]["redis"] == {"ok": False, "detail": "timeout"}
    assert body["checks"]["database"] == {"ok": True}


# --- /metrics: who may read it ----------------------------------------------------------------------------------


@pytest.fixture
def metrics_token(settings):
    settings.METRICS_TOKEN = METRICS_TOKEN
    return METRICS_TOKEN


def test_metrics_are_401_to_anonymous(db, metrics_token):
    response = Client().get("/metrics")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert b"payments_" not in response.content


def test_metrics_are_401_with_a_wrong_bearer_token(db, metrics_token):
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {metrics_token[:-1]}x")
    assert response.status_code == 401


def test_metrics_take_no_bearer_token_when_none_is_configured(db, settings):
    settings.METRICS_TOKEN = ""
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 401


def test_metrics_are_200_with_the_bearer_token(db, metrics_token, django_assert_num_queries):
    with django_assert_num_queries(0):  # a scraper with its token never reads a session
        response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {metrics_token}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    assert b"# TYPE payments_accepted_total counter" in response.content
    assert b"payments_queue_redis_up 1.0" in response.content


def test_metrics_are_200_for_a_staff_session(db, metrics_token):
    client = Client()
    client.force_login(get_user_model().objects.create_user("desk", is_staff=True))
    response = client.get("/metrics")
    assert response.status_code == 200
    assert b"payments_queue_jobs 0.0" in response.content


def test_metrics_are_403_for_a_session_that_is_not_staff(db, metrics_token):
    client = Client()
    client.force_login(get_user_model().objects.create_user("shopper"))
    assert client.get("/metrics").status_code == 403


# --- /metrics: what moves the numbers (in this process; the live test has the processes) ------------------------


@pytest.mark.django_db(transaction=True)
def test_a_processed_payment_moves_settled_durations_and_the_gateway_call(make_payment):
    before = {
        "accepted": sample("payments_accepted_total", channel="api"),
        "declined": sample("payments_settled_total", outcome="failed"),
        "e2e": sample("payments_end_to_end_seconds_count", outcome="failed"),
        "processing": sample("payments_processing_seconds_count", outcome="failed"),
        "charges": sample("payments_gateway_call_seconds_count", call="charge"),
        "tokenize": sample("payments_gateway_call_seconds_count", call="tokenize"),
    }
    # when: a payment is accepted and a worker's service processes it (real commits, real signal)
    payment = make_payment(VISA_DECLINED)
    payment_process(payment_id=payment.pk, actor=Actor.WORKER)
    # then
    assert sample("payments_accepted_total", channel="api") == before["accepted"] + 1
    assert sample("payments_settled_total", outcome="failed") == before["declined"] + 1
    assert sample("payments_end_to_end_seconds_count", outcome="failed") == before["e2e"] + 1
    assert sample("payments_processing_seconds_count", outcome="failed") == before["processing"] + 1
    assert sample("payments_gateway_call_seconds_count", call="charge") == before["charges"] + 1
    assert sample("payments_gateway_call_seconds_count", call="tokenize") == before["tokenize"] + 1


@pytest.mark.django_db(transaction=True)
def test_a_change_is_counted_once_and_only_its_first_outcome(make_payment):
    canceled = sample("payments_settled_total", outcome="canceled")
    payment = make_payment()
    payment_cancel(payment_id=payment.pk, actor=Actor.API)
    assert sample("payments_settled_total", outcome="canceled") == canceled + 1
    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.CANCELED


@pytest.mark.django_db
def test_a_change_that_rolls_back_is_never_counted(make_payment, django_capture_on_commit_callbacks):
    from django.db import transaction

    canceled = sample("payments_settled_total", outcome="canceled")
    payment = make_payment()

    class Abort(Exception):
        pass

    with pytest.raises(Abort), django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        payment_cancel(payment_id=payment.pk, actor=Actor.API)
        raise Abort
    assert sample("payments_settled_total", outcome="canceled") == canceled


@pytest.mark.django_db(transaction=True)
def test_metrics_answer_without_the_queue_when_its_redis_is_paused(paused_queue_redis, metrics_token):
    started = time.monotonic()
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {metrics_token}")
    waited = time.monotonic() - started
    assert response.status_code == 200
    assert waited < 3, f"/metrics waited {waited:.1f} s for a paused Redis"
    assert b"payments_queue_redis_up 0.0" in response.content
    assert b"payments_queue_jobs" not in response.content
