"""The benchmark harness's pieces, cheaply: the load generator's statistics, the bench-only endpoints and job,
the report, and (integration) a tiny end-to-end run of scenario 1 on the real stack."""

from __future__ import annotations

import asyncio
import json
import math
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from bench import record, report
from bench.jobs import noop_job
from bench.load import PAYMENT_BODY, LoadResult, LoadSpec, percentile, run_load, summarize_latencies
from bench.profiling import summarize_collapsed
from bench.scenarios import QUICK, bench_card_number
from payments.cards import luhn_valid, validate_card
from payments.models import Payment, PaymentStatus
from payments.sandbox.behaviours import TEST_CARD_BEHAVIOURS

BASE_DIR = Path(settings.BASE_DIR)


# --- the load generator's statistics --------------------------------------------------------------------
def test_percentile_interpolates_between_ranks_like_numpy():
    values = [float(v) for v in range(1, 11)]  # 1..10
    assert percentile(values, 0) == 1
    assert percentile(values, 100) == 10
    assert percentile(values, 50) == pytest.approx(5.5)
    assert percentile(values, 90) == pytest.approx(9.1)
    assert percentile(values, 99) == pytest.approx(9.91)
    assert percentile([42.0], 99) == 42
    assert math.isnan(percentile([], 50))
    with pytest.raises(ValueError):
        percentile(values, 101)


def test_latency_summary_is_in_milliseconds_and_ignores_order():
    summary = summarize_latencies([0.003, 0.001, 0.002, 0.004, 0.005])
    assert summary["p50_ms"] == pytest.approx(3.0)
    assert summary["max_ms"] == pytest.approx(5.0)
    assert summary["p99_ms"] == pytest.approx(4.96)
    assert math.isnan(summarize_latencies([])["p50_ms"])


def test_load_generator_measures_a_closed_loop_in_its_window():
    """A tiny HTTP server on 127.0.0.1 that answers 202 after 10 ms (every fifth request a 500): the client
    keeps 4 requests in flight, counts only the window's answers and reports the errors apart."""

    async def scenario() -> LoadResult:
        served = 0

        async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal served
            try:
                while True:
                    head = await reader.readuntil(b"\r\n\r\n")
                    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                                      if line.lower().startswith(b"content-length")))  # fmt: skip
                    await reader.readexactly(length)
                    served += 1
                    await asyncio.sleep(0.01)
                    status = b"500 Oops" if served % 5 == 0 else b"202 Accepted"
                    writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: 2\r\n\r\n{}")
                    await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError):
                writer.close()

        server = await asyncio.start_server(answer, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            return await run_load(
                LoadSpec(url=f"http://127.0.0.1:{port}/", concurrency=4, duration=0.5, warmup=0.1, max_requests=2000)
            )

    result = asyncio.run(scenario())
    assert result.window_s == pytest.approx(0.5, abs=0.05)
    assert result.completed == result.ok + result.errors
    # every fifth answer the server gives is a 500; the window can cut up to `concurrency` answers off each
    # end, and a starved machine can reorder a few more
    assert result.errors == pytest.approx(result.completed / 5, abs=6)
    assert result.rps == pytest.approx(result.ok / result.window_s)
    assert 10 <= result.p50_ms < 500
    assert result.statuses.keys() <= {"202", "500"}
    assert not result.budget_exhausted


def test_scenario_4_cards_are_distinct_valid_and_never_a_sandbox_test_card():
    numbers = {bench_card_number(serial) for serial in range(1, 500)}
    assert len(numbers) == 499
    for number in list(numbers)[:50]:
        assert luhn_valid(number)
        assert number not in TEST_CARD_BEHAVIOURS
        assert validate_card(number=number, exp_month=12, exp_year=2030, cvc="123").brand == "visa"


def test_quick_budget_stays_a_smoke_test():
    # --quick must finish in about a minute: every load run is short and scenario 4 drains a handful of jobs.
    assert QUICK.warmup + QUICK.duration <= 2
    assert QUICK.s3_warmup + QUICK.s3_duration <= 5
    assert QUICK.s4_jobs <= 100


def test_py_spy_stacks_are_summarized_by_inclusive_share(tmp_path):
    collapsed = tmp_path / "stacks.txt"
    collapsed.write_text(
        "thread (1): MainThread;run (twisted/internet/base.py:1);select (selectors.py:2) 3\n"
        "thread (2): ThreadPoolExecutor-1_0;APIView.dispatch (rest_framework/views.py:9);"
        "AbstractConnection.connect (redis/connection.py:10) 5\n"
        "thread (3): ThreadPoolExecutor-2_0;APIView.dispatch (rest_framework/views.py:9) 2\n"
    )
    summary = summarize_collapsed(collapsed)
    shares = {row["what"]: row["share"] for row in summary["categories"]}
    assert summary["samples"] == 10
    assert summary["event_loop_thread"] == pytest.approx(0.3)
    assert shares["DRF view, all of it (`APIView.dispatch`)"] == pytest.approx(0.7)
    assert shares["Redis: opening a connection"] == pytest.approx(0.5)


# --- the bench-only app ---------------------------------------------------------------------------------
def test_bench_endpoints_are_not_in_the_product(client):
    # The product's settings (the suite's) know nothing of the bench: no app, no URLconf, no switch.
    assert "bench" not in settings.INSTALLED_APPS
    assert (settings.ROOT_URLCONF, settings.ASGI_APPLICATION) == ("config.urls", "config.asgi.application")
    assert not [name for name in dir(settings) if name.startswith("BENCH")]
    assert client.post("/api/v1/bench/ceiling", {}, content_type="application/json").status_code == 404


def test_bench_settings_are_the_products_plus_the_bench_app_and_its_urls():
    import bench.settings

    product = sys.modules[os.environ["DJANGO_SETTINGS_MODULE"]]  # config.settings, which the suite runs
    assert [*product.INSTALLED_APPS, "bench"] == bench.settings.INSTALLED_APPS
    assert (bench.settings.ROOT_URLCONF, bench.settings.ASGI_APPLICATION) == ("bench.urls", "bench.asgi.application")
    names = {name for name in dir(product) if name.isupper()}
    assert {name for name in dir(bench.settings) if name.isupper()} == names
    changed = {name for name in names if getattr(bench.settings, name) != getattr(product, name)}
    assert changed == {"INSTALLED_APPS", "ROOT_URLCONF", "ASGI_APPLICATION"}


def test_noop_job_does_nothing():
    assert noop_job("42") == "42"


@pytest.fixture
def api_client(db):
    user = get_user_model().objects.create_user(username=f"bench-{uuid.uuid4().hex[:8]}")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return api


@pytest.mark.urls("bench.urls")
def test_ceiling_endpoint_authenticates_and_parses_the_body(api_client):
    assert APIClient().post("/api/v1/bench/ceiling", PAYMENT_BODY, format="json").status_code == 401
    response = api_client.post("/api/v1/bench/ceiling", PAYMENT_BODY, format="json")
    assert response.status_code == 200
    assert response.json() == {"ok": True, "fields": 3}


@pytest.mark.urls("bench.urls")
def test_sync_endpoint_does_the_accept_path_then_the_bank_call_inline(api_client):
    response = api_client.post(
        "/api/v1/bench/payments-sync", PAYMENT_BODY, format="json", HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4())
    )
    assert response.status_code == 200, response.content
    document = response.json()
    assert document["status"] == PaymentStatus.SUCCEEDED
    payment = Payment.objects.get(pk=document["id"])
    assert [e.to_status for e in payment.events.order_by("seq")] == ["pending", "processing", "succeeded"]
    # Without a key it answers as the accept path does.
    assert api_client.post("/api/v1/bench/payments-sync", PAYMENT_BODY, format="json").status_code == 400


# --- the report -----------------------------------------------------------------------------------------
def _load(rps: float) -> dict:
    return {
        "rps": rps, "p50_ms": 10.0, "p90_ms": 20.0, "p99_ms": 30.0, "errors": 0, "completed": 10,
        "client_cpu_share": 0.1, "server_cpu_share": {"daphne": 0.9}, "redis_connections_per_request": 1.0,
    }  # fmt: skip


def test_report_writes_every_figure_next_to_its_target_and_the_unmeasured_rows(tmp_path):
    run = {
        "stamp": "20260101T000000Z",
        "command": "python -m bench.run --quick",
        "budget": {
            "name": "quick",
            "warmup": 0.3,
            "duration": 1,
            "repeats": 1,
            "s3_warmup": 2.2,
            "s3_duration": 2.5,
            "max_requests": 5000,
            "s4_jobs": 60,
        },
        "seconds": 12.0,
        "machine": record.machine(report.PACKAGES),
        "database": "SQLite",
        "redis": "embedded",
        "scenarios": {
            "1": {
                "rows": [
                    {
                        "concurrency": 1,
                        "accept": _load(60),
                        "ceiling": _load(100),
                        "ratio": 0.6,
                        "runs": {"accept": [_load(60)], "ceiling": [_load(100)]},
                    }
                ],
                "figure": 0.6,
                "target": 0.5,
                "met": True,
            },
            "4": {
                "jobs": 60,
                "rows": [
                    {
                        "workers": 1,
                        "ratio": 0.1,
                        "payments": {"per_second": 50.0, "span_s": 1.2},
                        "noop": {"per_second": 500.0, "span_s": 0.12},
                    }
                ],
                "figure": 0.1,
                "target": 0.5,
                "met": False,
            },
        },
        "profile": None,
    }
    doc = tmp_path / "benchmarks.md"
    report.write_markdown(run, doc, json_path=record.write_json(run, tmp_path / "run.json"))
    text = doc.read_text()
    assert "**0.60** of ceiling | ≥ 0.5 | **yes**" in text
    assert "**0.10** of ceiling | ≥ 0.5 | **no**" in text
    assert "| 2 | gateway-latency independence | not measured in this run" in text
    # scenarios 2, 3, 5, 6, 7 and the scale-out run were not in this run: each says so beside its target
    assert text.count("not measured in this run") == 6
    assert "| 6 | 5,000 WebSocket clients waiting on one daphne | not measured in this run | N = 5,000" in text
    assert (tmp_path / "benchmarks.png").stat().st_size > 1000
    assert json.loads((tmp_path / "run.json").read_text())["scenarios"]["1"]["figure"] == 0.6


# --- end to end -----------------------------------------------------------------------------------------
@pytest.mark.integration
def test_make_bench_quick_runs_every_scenario_end_to_end(tmp_path):
    """The harness itself on the real stack (daphne, worker processes, this run's database server and Redis):
    every scenario, the scale-out run and the profiles with the --quick budget, in its own
    database and Redis database (about 2-3 minutes): what `make bench BENCH_ARGS=--quick` does."""
    redis_url = settings.REDIS_URL.rsplit("/", 1)[0] + "/14"
    done = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick"]
        + ["--results-dir", str(tmp_path), "--doc", str(tmp_path / "bench.md")]
        + ["--database-name", "checkout_bench_test", "--redis-url", redis_url],
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "stopped every process the bench started" in done.stdout
    (raw,) = tmp_path.glob("*-quick.json")
    scenarios = json.loads(raw.read_text())["scenarios"]
    assert list(scenarios) == ["1", "2", "3", "4", "5", "6", "7", "scale"]
    rows = scenarios["1"]["rows"]
    assert [row["concurrency"] for row in rows] == [1, 16, 64]
    assert all(row["accept"]["rps"] > 0 and row["ceiling"]["rps"] > 0 for row in rows)
    # every waiting socket got its outcome, and the workers kept many bank calls in flight at once
    waiting = scenarios["6"]
    why = {key: waiting.get(key) for key in ("lost_reasons", "lost_samples", "lost_settled_in_database")}
    assert waiting["received"] == waiting["n"] > 0 and waiting["lost"] == 0, why
    assert scenarios["7"]["most_in_flight"] > 2
    text = (tmp_path / "bench.md").read_text()
    assert "not measured in this run" not in text
    for row in ("| 1 | accept path, 1 client:", "| 5 | end to end", "| 6 | ", "| 7 | ", "| scale | accept"):
        assert row in text
    assert "## Choices settled by the figures" in text
    assert (tmp_path / "bench.png").is_file()
