"""Scenarios 5 and 6's pieces: the WebSocket client's bookkeeping, the floor (a no-op view, a no-op job and a
bench-only consumer) and, on a live stack, the client's two modes against daphne and a real worker."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
import uuid
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import django_rq
import pytest
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from rq import Worker

from bench.jobs import floor_done_key, floor_job
from bench.load import PAYMENT_BODY
from bench.scenario_e2e import S6_TARGET_N, _hold_result, _payment_id, details, summary_rows
from bench.urls import websocket_urlpatterns
from bench.ws_load import (
    OUTCOME_STATUSES,
    Arrival,
    E2ESpec,
    HoldSpec,
    SocketWatch,
    frame_payment,
    summarize_e2e,
)
from payments.models import OUTCOME_STATUSES as PRODUCT_OUTCOME_STATUSES
from payments.models import Payment
from payments.selectors import payment_status_payload
from tests.conftest import wait_until

BASE_DIR = Path(settings.BASE_DIR)


# --- the client's bookkeeping ---------------------------------------------------------------------------------
def test_the_client_stops_waiting_on_exactly_the_products_outcome_statuses():
    assert {str(status) for status in PRODUCT_OUTCOME_STATUSES} == OUTCOME_STATUSES


def test_frame_payment_reads_a_status_frame_and_nothing_else():
    frame = json.dumps({"type": "payment.status", "payment": {"status": "succeeded"}})
    assert frame_payment(frame) == {"status": "succeeded"}
    assert frame_payment(b'{"type": "payment.status", "payment": {"status": "pending"}}') == {"status": "pending"}
    for other in ("not json", "[]", '{"type": "hello"}', '{"payment": "succeeded"}'):
        assert frame_payment(other) is None


def _frame(status: str, seq: int, updated_at: float) -> str:
    updated = datetime.fromtimestamp(updated_at, tz=UTC).isoformat()
    return json.dumps({"type": "payment.status", "payment": {"status": status, "seq": seq, "updated_at": updated}})


def test_socket_watch_stops_at_the_outcome_and_times_it_from_its_commit():
    now = time.time()
    watch = SocketWatch()
    assert not watch.take(_frame("pending", 1, now - 3))
    assert not watch.take(_frame("processing", 2, now - 2))
    assert watch.last_seq == 2  # what a resume asks after
    watch.resumes = 1  # a heartbeat went out meanwhile
    assert watch.take(_frame("succeeded", 3, now - 0.25))
    assert (watch.outcome, watch.last_seq, watch.frames) == ("succeeded", 3, 3)
    assert watch.outcome_after_resume
    assert watch.outcome_delay == pytest.approx(0.25, abs=0.2)
    assert not SocketWatch().take("not a status frame")


def _arrival(measured: bool, began: float, *, wait: float | None, error: str = "") -> Arrival:
    arrival = Arrival(measured=measured, scheduled=began, began=began, error=error)
    if wait is not None:
        arrival.accepted, arrival.opened, arrival.settled = began + 0.01, began + 0.02, began + wait
        arrival.frames = 2
    return arrival


def test_e2e_summary_counts_the_measured_arrivals_only_and_the_rates_they_kept():
    # Ten arrivals at 10/s: two in the warm-up (slow, not counted), then eight of which one never settled.
    arrivals = [_arrival(False, 0.0, wait=5.0), _arrival(False, 0.1, wait=5.0)]
    arrivals += [_arrival(True, 0.2 + 0.1 * n, wait=0.05) for n in range(7)]
    arrivals.append(_arrival(True, 0.9, wait=None, error="no outcome within 30 s (x; 1 frame(s) before)"))
    summary = summarize_e2e(arrivals, offered_rate=10)
    assert (summary["measured"], summary["settled"], summary["errors"]) == (8, 7, 1)
    assert summary["error_kinds"] == {"no outcome within 30 s": 1}
    assert summary["total"]["p50_ms"] == pytest.approx(50)
    assert summary["total"]["max_ms"] == pytest.approx(50)  # the warm-up's 5 s waits are not in it
    assert summary["post"]["p50_ms"] == pytest.approx(10)
    assert summary["sent_rate"] == pytest.approx(10)  # 8 POSTs over 0.7 s: 7 intervals of 0.1 s
    assert summary["settled_rate"] == pytest.approx(7 / 0.65, abs=0.01)  # first measured POST → last outcome
    assert len(summary["latencies_ms"]) == 7


def _hold(n: int, *, lost: int, kib_per_socket: float = 40.0) -> dict:
    """Scenario 6's result from the client's two reports and three probes of daphne."""
    before = {"daphne_rss_mib": 100.0, "daphne_fds": 10, "channel_groups_kib": 0.0}
    with_all = {"daphne_rss_mib": 100.0 + n * kib_per_socket / 1024, "daphne_fds": 10 + n, "channel_groups_kib": n}
    connected = {"connected": n, "connect_failures": {}, "connect_seconds": 1.0, "connect_rate": float(n)}
    done = {
        "connected": n, "received": n - lost, "lost": lost, "lost_reasons": {}, "lost_samples": [],
        "outcome_on_connect": 0, "outcome_after_resume": 0, "resumes_sent": 0, "client_max_rss_mib": 50.0,
        "outcome_delay": {"p50_ms": 5.0, "p90_ms": 9.0, "p99_ms": 20.0, "max_ms": 30.0},
    }  # fmt: skip
    return _hold_result(n, before, with_all, before, connected, done)


def test_scenario_6_reports_memory_per_socket_and_meets_its_target_only_at_5000_with_none_lost():
    small = _hold(200, lost=0)
    assert small["kib_per_connection"] == pytest.approx(40)
    assert small["group_kib_per_connection"] == pytest.approx(1)
    assert small["daphne_fds_besides_sockets"] == 10
    assert not small["met"]  # none lost, but N is below the target
    assert _hold(S6_TARGET_N, lost=0)["met"]
    assert not _hold(S6_TARGET_N, lost=1)["met"]


# --- the floor: a no-op view, a no-op job, a bench-only socket --------------------------------------------------
@pytest.fixture
def token_user(db):
    user = get_user_model().objects.create_user(username=f"bench-{uuid.uuid4().hex[:8]}")
    return user, Token.objects.create(user=user).key


@pytest.mark.urls("bench.urls")
def test_floor_view_authenticates_then_queues_one_floor_job_and_names_its_socket(token_user):
    assert APIClient().post("/api/v1/bench/floor", PAYMENT_BODY, format="json").status_code == 401
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token_user[1]}")
    response = api.post("/api/v1/bench/floor", PAYMENT_BODY, format="json")
    assert response.status_code == 202
    document = response.json()
    assert document["status"] == "pending"
    assert document["links"]["websocket"] == f"/ws/bench/floor/{document['id']}"
    queue = django_rq.get_queue("payments")
    (job,) = queue.get_jobs()
    assert (job.id, job.func_name, job.args) == (f"floor-{document['id']}", "bench.jobs.floor_job", (document["id"],))
    assert job.timeout == settings.PAYMENTS_JOB_TIMEOUT  # the options a payment's job gets


def _floor_socket(floor_id: str) -> WebsocketCommunicator:
    return WebsocketCommunicator(URLRouter(websocket_urlpatterns), f"/ws/bench/floor/{floor_id}")


def test_floor_socket_gets_the_outcome_when_the_job_ran_before_it_joined(redis_client):
    floor_id = str(uuid.uuid4())
    floor_job(floor_id)
    assert redis_client.exists(floor_done_key(floor_id))

    async def scenario():
        socket = _floor_socket(floor_id)
        connected, _ = await socket.connect()
        assert connected
        frame = await socket.receive_json_from(timeout=5)
        assert await socket.receive_nothing(timeout=0.3)  # one outcome frame, not two
        await socket.disconnect()
        return frame

    frame = asyncio.run(scenario())
    assert frame == {
        "type": "payment.status",
        "payment": {"id": floor_id, "status": "succeeded", "has_outcome": True, "seq": 1},
    }


def test_floor_socket_waits_and_gets_the_push_when_the_job_runs_after_it_joined():
    floor_id = str(uuid.uuid4())

    async def scenario():
        socket = _floor_socket(floor_id)
        connected, _ = await socket.connect()
        assert connected
        assert await socket.receive_nothing(timeout=0.3)  # nothing done yet: nothing sent
        await asyncio.to_thread(floor_job, floor_id)  # as a worker thread would, through the product's push
        frame = await socket.receive_json_from(timeout=5)
        await socket.disconnect()
        return frame

    assert frame_payment(json.dumps(asyncio.run(scenario())))["status"] == "succeeded"


def test_floor_socket_answers_a_resume_once_the_job_is_done(redis_client):
    """The wait page's heartbeat: a push that never came is caught by asking again."""
    floor_id = str(uuid.uuid4())

    async def scenario():
        socket = _floor_socket(floor_id)
        await socket.connect()
        await socket.send_json_to({"type": "resume", "after_seq": 0})
        assert await socket.receive_nothing(timeout=0.3)  # not done: nothing to say
        await asyncio.to_thread(redis_client.set, floor_done_key(floor_id), "1")  # done, and no push
        await socket.send_json_to({"type": "resume", "after_seq": 0})
        frame = await socket.receive_json_from(timeout=5)
        await socket.disconnect()
        return frame

    assert asyncio.run(scenario())["payment"]["status"] == "succeeded"


# --- the client on a live stack --------------------------------------------------------------------------------
def _wait_worker_ready(timeout: float = 30) -> None:
    connection = django_rq.get_connection("payments")
    wait_until(lambda: Worker.count(connection=connection) > 0, timeout=timeout, message="a worker")


def _ws_load(mode: str, spec, **popen) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "bench.ws_load", mode, "--spec", json.dumps(asdict(spec))],
        cwd=BASE_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


@pytest.mark.integration
def test_e2e_client_times_the_product_and_the_floor_from_post_to_outcome_frame(live_stack_factory):
    stack = live_stack_factory(
        application="bench.asgi:application", DJANGO_SETTINGS_MODULE="bench.settings", API_THROTTLE_RATE="100000/min"
    )
    user = get_user_model().objects.create_user(username="bench-e2e")
    token = Token.objects.create(user=user).key
    stack.start_worker()
    _wait_worker_ready()
    results = {}
    for path in ("/api/v1/payments", "/api/v1/bench/floor"):
        spec = E2ESpec(base_url=stack.http_url, path=path, rate=10, duration=0.5, warmup=0.2, token=token)
        out, err = _ws_load("e2e", spec).communicate(timeout=90)
        assert out, err
        results[path] = json.loads(out)
    for path, result in results.items():
        assert result["measured"] == 5 and result["settled"] == 5, (path, result["error_samples"], stack.logs())
        assert 0 < result["total"]["p50_ms"] < 30_000
        assert result["post"]["p50_ms"] < result["total"]["p50_ms"]
        assert result["sent_total"] == 7  # two warm-up arrivals, then five measured
    # The product's shoppers really were its payments, settled by the worker.
    assert results["/api/v1/payments"]["frames_per_shopper"] >= 1
    assert Payment.objects.filter(owner_user=user, status="succeeded").count() == 7


@pytest.mark.integration
def test_hold_client_keeps_sockets_until_go_then_every_one_gets_its_outcome(live_stack, make_payment):
    payments = [make_payment() for _ in range(3)]
    paths = [payment_status_payload(payment)["links"]["websocket"] for payment in payments]
    assert all(re.fullmatch(r"/ws/payments/[0-9a-f-]{36}\?token=.+", path) for path in paths)
    assert [_payment_id(path) for path in paths] == [str(payment.pk) for payment in payments]
    spec = HoldSpec(base_url=live_stack.http_url, ws_paths=paths, connect_rate=50, settle_timeout=60, heartbeat=0.2)
    client = _ws_load("hold", spec, stdin=subprocess.PIPE)
    try:
        connected = json.loads(client.stdout.readline())
        assert connected["event"] == "connected"
        assert (connected["attempted"], connected["connected"]) == (3, 3), client.stderr.read()
        time.sleep(0.3)
        assert client.poll() is None  # it holds its sockets until told to go on
        client.stdin.write("go\n")
        client.stdin.flush()
        live_stack.run_worker_burst()
        out, err = client.communicate(timeout=60)
    finally:
        if client.poll() is None:
            client.kill()
    done = json.loads(out)
    assert done["event"] == "done", err
    assert (done["received"], done["lost"], done["outcome_on_connect"]) == (3, 0, 0)
    assert done["resumes_sent"] > 0  # the wait page's heartbeat, sped up for the test
    assert 0 <= done["outcome_delay"]["p50_ms"] < 30_000 and done["lost_paths"] == []
    assert done["go_at"] <= done["first_outcome_at"] <= done["last_outcome_at"]


# --- the report -------------------------------------------------------------------------------------------------
def _e2e_run(p99: float) -> dict:
    def ms(value: float) -> dict:
        return {"p50_ms": value, "p90_ms": value, "p99_ms": value, "max_ms": value}

    return {
        "sent_rate": 20.0, "settled_rate": 20.0, "total": ms(p99), "post": ms(5.0), "ws_open": ms(3.0),
        "to_outcome": ms(2.0), "outcome_on_first_frame": 1, "outcome_after_resume": 0, "settled": 10, "errors": 0,
        "max_in_flight": 2,
        "server_cpu_share": {"daphne": 0.2, "workers": 0.1},
    }  # fmt: skip


def test_scenario_5_report_row_puts_the_p99_ratio_beside_its_target():
    result = {
        "scenario": 5,
        "rate": 20,
        "workers": 2,
        "floor": {"p50_ms": 10.0, "p99_ms": 20.0, "settled": 10},
        "product": {"p50_ms": 25.0, "p99_ms": 50.0, "settled": 10},
        "p50_ratio": 2.5,
        "runs": {"floor": [_e2e_run(20.0)], "product": [_e2e_run(50.0)]},
        "figure": 2.5,
        "target": 3.0,
        "met": True,
    }
    (row,) = summary_rows(result)
    assert row.startswith("| 5 | end to end")
    assert row.endswith("| **2.50×** floor | ≤ 3× | **yes** |")
    text = "\n".join(details(result))
    assert "| floor #1 | 20.0 | 20.0 | 20.0 |" in text
    assert "| product #1 | 20.0 | 20.0 | 50.0 |" in text
