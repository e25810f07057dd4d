"""Profiles of the hot paths, taken in the harness's own process on the bench's database and Redis.

- the accept path: POST /api/v1/payments through Django's test client (the same middleware, DRF view and
  services as under daphne, without the ASGI layer), against the ceiling endpoint for scale;
- the worker's job: `payment_process_job` on pending payments, as a worker thread runs it.

For each: SQL queries and Redis commands and connections per call (from the server's INFO counters), the
time per call, a pyinstrument profile (its text under bench/results/) and the time spent under the
functions that matter, read from the profile's call tree.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from bench.load import PAYMENT_BODY
from bench.scenarios import redis_counters

# Functions whose cumulative time is reported (the outermost call of each, by name).
ACCEPT_STEPS = (
    ("authentication (token lookup)", "perform_authentication"),
    ("throttle (Redis cache)", "check_throttles"),
    ("body validation (serializer)", "is_valid"),
    ("idempotency: was the key used", "idempotency_key_used"),
    ("load shedding: queue length", "payments_backlog"),
    ("tokenize (sandbox vault)", "card_tokenize"),
    ("payment_create (rows)", "payment_create"),
    ("status document", "payment_status_payload"),
    ("idempotency: store the answer", "idempotency_record"),
    ("enqueue (after commit)", "payment_enqueue"),
)
JOB_STEPS = (
    ("risk checks", "payment_risk_assess"),
    ("transitions (lock, save, event)", "payment_transition"),
    ("gateway charge (sandbox)", "charge"),
    ("status push (group_send)", "payment_push_status"),
)


def _measure(redis_client, call, count: int) -> dict:
    """Time, Redis commands and Redis connections per call, over `count` calls."""
    commands_before, connections_before = redis_counters(redis_client)
    began = time.perf_counter()
    for number in range(count):
        call(number)
    elapsed = time.perf_counter() - began
    commands_after, connections_after = redis_counters(redis_client)
    return {
        "ms_per_call": elapsed / count * 1000,
        "redis_commands_per_call": (commands_after - commands_before) / count,
        "redis_connections_per_call": (connections_after - connections_before) / count,
    }


def _queries(call) -> list[str]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        call()
    return [query["sql"] for query in captured.captured_queries]


def _steps(profiler, steps) -> list[dict]:
    """Cumulative time under each named function (outermost calls only), as a share of the profile."""
    root = profiler.last_session.root_frame()
    total = root.time if root is not None else 0.0
    found = {name: 0.0 for _, name in steps}

    def walk(frame, inside: frozenset) -> None:
        name = frame.function
        if name in found and name not in inside:
            found[name] += frame.time
            inside = inside | {name}
        for child in frame.children:
            walk(child, inside)

    if root is not None:
        walk(root, frozenset())
    return [
        {"step": label, "function": name, "share": (found[name] / total) if total else 0.0} for label, name in steps
    ]


def _profile(call, count: int, interval: float = 0.0005):
    from pyinstrument import Profiler

    profiler = Profiler(interval=interval)
    profiler.start()
    for number in range(count):
        call(number)
    profiler.stop()
    return profiler


def profile_hot_paths(*, token: str, results_dir: Path, stamp: str, requests: int, log=print) -> dict:
    import redis
    from django.conf import settings
    from django.test import Client

    from bench.scenarios import record_pending_payments
    from payments.jobs import payment_process_job

    redis_client = redis.Redis.from_url(settings.REDIS_URL)
    redis_client.flushdb()
    client = Client(HTTP_AUTHORIZATION=f"Token {token}")
    body = json.dumps(PAYMENT_BODY)
    prefix = f"profile-{stamp}"

    def accept(number: int, tag: str = "p") -> None:
        response = client.post(
            "/api/v1/payments", body, content_type="application/json", HTTP_IDEMPOTENCY_KEY=f"{prefix}-{tag}-{number}"
        )
        assert response.status_code == 202, response.content

    def ceiling(number: int) -> None:
        response = client.post("/api/v1/bench/ceiling", body, content_type="application/json")
        assert response.status_code == 200, response.content

    log(f"profile: the accept path, {requests} requests in-process")
    for number in range(10):  # warm: imports, caches, connections
        accept(number, "warm")
        ceiling(number)
    accept_queries = _queries(lambda: accept(0, "queries"))
    ceiling_queries = _queries(lambda: ceiling(0))
    accept_cost = _measure(redis_client, lambda n: accept(n, "measure"), max(requests // 3, 10))
    ceiling_cost = _measure(redis_client, ceiling, max(requests // 3, 10))
    profiler = _profile(accept, requests)
    accept_text = profiler.output_text(unicode=True, color=False, show_all=False)
    (results_dir / f"{stamp}-profile-accept.txt").write_text(accept_text)
    accept_steps = _steps(profiler, ACCEPT_STEPS)

    job_count = max(requests // 3, 10)
    log(f"profile: the worker's payment job, {job_count + 2} jobs in-process (latency 0)")
    redis_client.flushdb()
    payment_ids = [str(payment.pk) for payment in record_pending_payments(2 * job_count + 2)]
    job_queries = _queries(lambda: payment_process_job(payment_ids[0]))
    payment_process_job(payment_ids[1])  # warm
    job_cost = _measure(redis_client, lambda n: payment_process_job(payment_ids[2 + n]), job_count)
    remaining = payment_ids[2 + job_count :]
    job_profiler = _profile(lambda n: payment_process_job(remaining[n]), len(remaining))
    job_text = job_profiler.output_text(unicode=True, color=False, show_all=False)
    (results_dir / f"{stamp}-profile-job.txt").write_text(job_text)
    job_steps = _steps(job_profiler, JOB_STEPS)
    redis_client.flushdb()
    redis_client.close()

    return {
        "accept": {
            **accept_cost,
            "queries": accept_queries,
            "steps": accept_steps,
            "profile_txt": f"{stamp}-profile-accept.txt",
        },
        "ceiling": {**ceiling_cost, "queries": ceiling_queries},
        "job": {
            **job_cost,
            "queries": job_queries,
            "steps": job_steps,
            "profile_txt": f"{stamp}-profile-job.txt",
        },
        "requests": requests,
    }


# --- the server under load: py-spy on the daphne process -------------------------------------------------
# Inclusive share of the server's sampled (non-idle) time under frames matching each pattern. py-spy writes a
# frame as "Class.function (path/file.py)" (line numbers left out: --nolineno).
SERVER_CATEGORIES = (
    ("DRF view, all of it (`APIView.dispatch`)", r"\.dispatch \(rest_framework/views\.py"),
    ("token authentication", r"\.authenticate \(rest_framework/authentication\.py"),
    ("throttle (Django's Redis cache)", r"\.allow_request \(rest_framework/throttling\.py"),
    ("Redis: opening a connection", r"\.connect \(redis/connection\.py"),
    ("Redis: all commands", r"\.execute_command \(redis/client\.py|\.execute \(redis/client\.py"),
    ("database: opening a connection", r"\.connect \(django/db/backends/base/base\.py"),
    ("database: executing SQL", r"\._execute \(django/db/backends/utils\.py"),
    ("tokenize (sandbox vault)", r"card_tokenize \("),
    ("load shedding: queue length", r"payments_backlog \("),
    ("enqueue", r"payment_enqueue \("),
)


def py_spy_path() -> str | None:
    import shutil
    import sys

    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.is_file() else shutil.which("py-spy")


def summarize_collapsed(path: Path, categories=SERVER_CATEGORIES) -> dict:
    """Shares from py-spy's raw (collapsed) output: per category, and the event-loop thread's share."""
    import re

    patterns = [(label, re.compile(pattern)) for label, pattern in categories]
    totals = dict.fromkeys((label for label, _ in categories), 0)
    samples = main_thread = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        samples += count
        frames = stack.split(";")
        if "MainThread" in frames[0]:
            main_thread += count
        for label, pattern in patterns:
            if any(pattern.search(frame) for frame in frames):
                totals[label] += count
    share = (lambda n: n / samples) if samples else (lambda n: 0.0)
    return {
        "samples": samples,
        "event_loop_thread": share(main_thread),
        "categories": [{"what": label, "share": share(totals[label])} for label, _ in categories],
    }


def profile_server(ctx, *, results_dir: Path, stamp: str) -> dict | None:
    """py-spy on daphne while the ceiling and the accept path are under load (16 clients); None without py-spy
    or when it may not attach (no ptrace permission)."""
    import gzip
    import subprocess

    from bench.scenarios import ACCEPT_PATH, CEILING_PATH, reset_redis, run_load

    spy = py_spy_path()
    if spy is None:
        ctx.log("profile: py-spy not installed; no server-side profile")
        return None
    stack, budget = ctx.stack, ctx.budget
    seconds = max(1, int(budget.duration))
    reset_redis(stack)
    stack.start_web(SANDBOX_LATENCY_MS="0")
    out = {}
    try:
        for name, path, expect in (("ceiling", CEILING_PATH, 200), ("accept", ACCEPT_PATH, 202)):
            ctx.log(f"profile: py-spy on daphne, {name} under 16 clients, {seconds} s")
            target = results_dir / f"{stamp}-py-spy-{name}.txt"
            recorder = subprocess.Popen(  # noqa: S603 - our own argv
                [spy, "record", "--pid", str(stack.web.pid), "--duration", str(seconds), "--rate", "200"]
                + ["--format", "raw", "--threads", "--nolineno", "--nonblocking", "--output", str(target)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            load = run_load(ctx, path, concurrency=16, expect_status=expect, warmup=0.2, duration=seconds + 0.5)
            try:
                _, errors = recorder.communicate(timeout=seconds + 30)
            except subprocess.TimeoutExpired:
                recorder.kill()
                recorder.communicate()
                errors = "py-spy did not finish"
            if recorder.returncode != 0 or not target.is_file():
                ctx.log(f"profile: py-spy failed ({errors.strip()[-300:]}); no server-side profile")
                return None
            summary = summarize_collapsed(target)
            packed = target.with_name(target.name + ".gz")
            packed.write_bytes(gzip.compress(target.read_bytes()))
            target.unlink()
            out[name] = {"load": load, "collapsed": packed.name, **summary}
    finally:
        stack.stop_web()
        reset_redis(stack)
    return out
