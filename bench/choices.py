"""Choices that the figures settle (issue 6), each measured side by side in one run and written down.

1. `servers`: daphne vs uvicorn for HTTP, the ceiling endpoint and the accept path at 16 and 64 clients,
   both servers up at once on the same application and settings, the runs interleaved; plus one WebSocket
   round trip on each (uvicorn speaks ASGI WebSockets too).
2. `workers`: RQ no-op jobs/s with the forking `rq.worker.Worker` vs `rq.worker.SimpleWorker`, one process
   each on the same queue, timed from the jobs' own start/end stamps (as scenario 4); THREADED_WORKER_ROWS
   adds the threaded worker (`manage.py payments_worker`, as `make run` starts it) as a third row.
3. `connections` (PostgreSQL only): the accept path at 64 clients with no pool and `DATABASE_CONN_MAX_AGE=0`,
   Django's psycopg pool (`DATABASE_POOL_MAX_SIZE=10`), and no pool with `DATABASE_CONN_MAX_AGE=60`, with
   the peak number of server connections to the bench database sampled from pg_stat_activity during each
   run; a side runs only if config/settings.py reads its variables as meant (checked, and recorded).
4. `writes`: what one `POST /api/v1/payments` writes, in-process through DRF's APIClient: every SQL
   statement grouped by transaction and kind, and every Redis command (from Redis's MONITOR, filtered to
   the bench's database), against the ceiling endpoint.

`choices(ctx)` returns the raw figures with a recommendation for each; `details(result)` renders the section
"Choices settled by the figures". Try it alone: `python -m bench.choices [--quick] [--database-url URL]`.
"""

from __future__ import annotations

import asyncio
import json
import re
import statistics
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from bench.load import PAYMENT_BODY
from bench.scenarios import (
    ACCEPT_PATH,
    CEILING_PATH,
    Context,
    _enqueue_noop_jobs,
    _interleaved,
    _ratio,
    _summary,
    reset_redis,
    run_load,
)
from bench.stack import BASE_DIR, PYTHON, Child, Stack, _with_path

PARTS = ("servers", "workers", "connections", "writes")


@dataclass(frozen=True)
class ChoicesBudget:
    http_warmup: float
    http_duration: float
    http_repeats: int  # runs of each server per cell, interleaved A B B A
    http_concurrencies: tuple[int, ...]
    noop_jobs: int  # jobs drained by each worker row
    drain_timeout: float
    pool_concurrency: int
    pool_warmup: float
    pool_duration: float
    connection_sides: tuple[str, ...]  # keys of CONNECTION_SIDES
    connection_repeats: int  # runs of per-request vs pool, interleaved


BUDGETS = {
    "quick": ChoicesBudget(
        http_warmup=0.2,
        http_duration=0.5,
        http_repeats=1,
        http_concurrencies=(16,),  # a smoke: 64 clients only in the default budget
        noop_jobs=30,
        drain_timeout=60,
        pool_concurrency=64,
        pool_warmup=0.2,
        pool_duration=0.5,
        # Not kept_alive: it takes the server to its connection limit, which a CI smoke run must not do.
        connection_sides=("per_request", "pool"),
        connection_repeats=1,
    ),
    "default": ChoicesBudget(
        http_warmup=0.5,
        http_duration=1.5,
        http_repeats=2,
        http_concurrencies=(16, 64),
        noop_jobs=300,  # about 5 s for the forking worker at ~55/s
        drain_timeout=120,
        pool_concurrency=64,
        pool_warmup=0.5,
        pool_duration=1.5,
        connection_sides=("per_request", "pool", "kept_alive"),
        connection_repeats=2,
    ),
}

# A second server is worth running only for a clear gain on the product's own endpoint: below this, the
# noise of a shared 2-core machine and the cost of operating two servers outweigh it.
SPLIT_WORTH = 1.25
# SimpleWorker gives up one process per job (a crashing or leaking job takes the worker down with it):
# worth it for a clear gain.
WORKER_CLASS_WORTH = 1.5


def choices(ctx: Context, *, parts: Iterable[str] = PARTS) -> dict:
    budget = BUDGETS.get(ctx.budget.name, BUDGETS["default"])
    measure = {
        "servers": compare_servers,
        "workers": compare_worker_classes,
        "connections": compare_connections,
        "writes": accept_writes,
    }
    result: dict = {"budget": ctx.budget.name}
    for part in parts:
        started = time.monotonic()
        result[part] = measure[part](ctx, budget)
        result[part]["seconds"] = round(time.monotonic() - started, 1)
    return result


# --- 1: daphne vs uvicorn ---------------------------------------------------------------------------------
SERVERS: dict[str, Callable[..., str]] = {"daphne": Stack.start_web, "uvicorn": Stack.start_web_uvicorn}
ENDPOINTS = (("ceiling", CEILING_PATH, 200), ("accept", ACCEPT_PATH, 202))


@contextmanager
def _servers_side_by_side(stack: Stack, **env: str) -> Iterator[dict[str, tuple[Child, str]]]:
    """Both servers up at once (an idle one costs the other nothing), so that the runs can alternate without
    restarts. Each is started through the Stack and then detached from its one `web` slot, so the next start
    does not stop it; every one is stopped through stop_web at the end, on error too."""
    started: dict[str, tuple[Child, str]] = {}
    try:
        for name, start in SERVERS.items():
            start(stack, **env)
            started[name] = (stack.web, stack.web_url)
            stack.web = None
        yield started
    finally:
        children = [stack.web, *(child for child, _ in started.values())]
        for child in {id(child): child for child in children if child is not None}.values():
            stack.web = child
            stack.stop_web()


def _labelled(ctx: Context, name: str) -> Context:
    """The context with run_load's log lines tagged with the server's name."""
    return Context(stack=ctx.stack, budget=ctx.budget, log=lambda line: ctx.log(f"{line} [{name}]"))


def _serve_from(stack: Stack, server: tuple[Child, str]) -> None:
    """Point the stack (and so run_load: its URL and the server process whose CPU it reads) at a server."""
    stack.web, stack.web_url = server


def compare_servers(ctx: Context, budget: ChoicesBudget) -> dict:
    stack = ctx.stack
    ctx.log("choices: daphne vs uvicorn, both up, the same application and settings, runs interleaved")
    reset_redis(stack)
    names = list(SERVERS)
    cells = []
    with _servers_side_by_side(stack, SANDBOX_LATENCY_MS="0") as servers:
        for concurrency in budget.http_concurrencies:
            for endpoint, path, expect in ENDPOINTS:
                # Who goes first alternates from cell to cell too.
                order = names if len(cells) % 2 == 0 else names[::-1]
                runs: dict[str, list[dict]] = {name: [] for name in names}
                for name in _interleaved(budget.http_repeats, *order):
                    _serve_from(stack, servers[name])
                    runs[name].append(
                        run_load(
                            _labelled(ctx, name),
                            path,
                            concurrency=concurrency,
                            expect_status=expect,
                            warmup=budget.http_warmup,
                            duration=budget.http_duration,
                        )
                    )
                sides = {name: _server_summary(runs[name]) for name in names}
                cells.append(
                    {
                        "endpoint": endpoint,
                        "path": path,
                        "concurrency": concurrency,
                        **sides,
                        "ratio": _ratio(sides["uvicorn"]["rps"], sides["daphne"]["rps"]),
                        "runs": runs,
                    }
                )
        websocket = {name: _websocket_round_trip(stack, url) for name, (_, url) in servers.items()}
        rss_mib = {name: _rss_mib(child.pid) for name, (child, _) in servers.items()}
    reset_redis(stack)
    accept_ratios = [cell["ratio"] for cell in cells if cell["endpoint"] == "accept"]
    return {
        "cells": cells,
        "websocket": websocket,
        "rss_mib_after": rss_mib,
        "uvicorn_stack": _uvicorn_stack(),
        "accept_ratio_min": min(accept_ratios),
        "accept_ratio_max": max(accept_ratios),
        "recommendation": _server_recommendation(min(accept_ratios), max(accept_ratios)),
    }


def _server_summary(runs: list[dict]) -> dict:
    """scenario 1's medians, plus the server's CPU (run_load files the web process under "daphne" whichever
    server it is) and its new Redis connections per request."""
    return {
        **_summary(runs),
        "server_cpu_share": statistics.median(run["server_cpu_share"].get("daphne", float("nan")) for run in runs),
        "redis_connections_per_request": statistics.median(run["redis_connections_per_request"] for run in runs),
    }


def _rss_mib(pid: int) -> float:
    from bench.stack import process_rss_mib

    return round(process_rss_mib(pid), 1)


def _uvicorn_stack() -> dict:
    """What uvicorn ran on: with uvicorn[standard] its `auto` choices are uvloop and httptools."""
    from importlib import metadata

    versions = {}
    for name in ("uvicorn", "uvloop", "httptools", "websockets", "daphne", "twisted"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _websocket_round_trip(stack: Stack, base_url: str) -> dict:
    """One payment accepted over HTTP, then its WebSocket opened on the same server: the Channels consumer's
    first frame (the status read from the database) proves the server carries the app's WebSockets."""
    import httpx

    response = httpx.post(
        base_url + ACCEPT_PATH,
        json=PAYMENT_BODY,
        headers={"Authorization": f"Token {stack.token}", "Idempotency-Key": f"choices-ws-{uuid.uuid4().hex}"},
        timeout=10,
    )
    if response.status_code != 202:
        return {"ok": False, "error": f"accept answered {response.status_code}"}
    link = response.json()["links"]["websocket"]
    ws_url = base_url.replace("http://", "ws://", 1) + link
    try:
        return asyncio.run(_first_frame(ws_url))
    except (OSError, TimeoutError, ValueError) as error:
        return {"ok": False, "error": repr(error)}


async def _first_frame(ws_url: str, timeout: float = 10) -> dict:
    import websockets

    began = time.perf_counter()
    async with asyncio.timeout(timeout), websockets.connect(ws_url) as socket:
        frame = json.loads(await socket.recv())
    return {
        "ok": frame.get("type") == "payment.status",
        "first_frame_ms": round((time.perf_counter() - began) * 1000, 1),
        "status": frame.get("payment", {}).get("status"),
    }


def _span(low: float, high: float) -> str:
    return f"{low:.2f}×" if f"{low:.2f}" == f"{high:.2f}" else f"{low:.2f}–{high:.2f}×"


def _server_recommendation(low: float, high: float) -> str:
    if low >= SPLIT_WORTH:
        return (
            f"uvicorn serves the accept path at {_span(low, high)} daphne's throughput: worth serving HTTP with "
            "uvicorn (the same config.asgi:application) and keeping daphne for /ws/ behind the load balancer, "
            "or moving both once scenario 6's WebSocket figures are re-measured under uvicorn."
        )
    if high <= 1 / SPLIT_WORTH:
        return f"uvicorn is slower here ({_span(low, high)} daphne on the accept path): keep daphne."
    return (
        f"uvicorn serves the accept path at {_span(low, high)} daphne's throughput, under the {SPLIT_WORTH}× that "
        "would pay for a second server: keep daphne for HTTP and WebSockets, as the fixed stack says. Changing "
        "the server moves little because the time goes above it (DRF, the services, the database, Redis)."
    )


# --- 2: the RQ worker class -------------------------------------------------------------------------------
@dataclass(frozen=True)
class WorkerRow:
    label: str
    # Starts one burst worker process on the "payments" queue; it must exit once the queue is empty.
    start: Callable[[Stack], list[Child]]


def burst_worker(*manage_args: str) -> Callable[[Stack], list[Child]]:
    """A starter for `manage.py <manage_args> --burst`."""
    return lambda stack: [_spawn_burst_worker(stack, *manage_args)]


def _rq_worker_class(worker_class: str) -> Callable[[Stack], list[Child]]:
    """A starter for django-rq's rqworker with a given class, under a fresh name at each start."""
    return lambda stack: [
        _spawn_burst_worker(
            stack, "rqworker", "payments", "--worker-class", worker_class, "--name", f"choices-{uuid.uuid4().hex[:12]}"
        )
    ]


def _spawn_burst_worker(stack: Stack, *manage_args: str) -> Child:
    """Registered with the stack, so that wait_workers and close() handle it like the product's workers."""
    child = stack._spawn(f"worker-{manage_args[0]}-burst", [PYTHON, "manage.py", *manage_args, "--burst"], stack.env)
    stack.workers.append(child)
    return child


WORKER_ROWS = (
    WorkerRow("forking `rq.worker.Worker`", _rq_worker_class("rq.worker.Worker")),
    WorkerRow("`rq.worker.SimpleWorker`", _rq_worker_class("rq.worker.SimpleWorker")),
)
# The threaded worker's rows: what `make run` starts (payments_worker, PAYMENTS_WORKER_THREADS RQ workers on
# threads in one process), through the Stack so that it follows runstack. More rows go here, e.g.
#   WorkerRow("`payments_worker --threads 32`", lambda stack: stack.start_workers(1, burst=True, threads=32)).
THREADED_WORKER_ROWS: tuple[WorkerRow, ...] = (
    WorkerRow("`payments_worker` as `make run` starts it", lambda stack: stack.start_workers(1, burst=True)),
)


def compare_worker_classes(ctx: Context, budget: ChoicesBudget, rows: Iterable[WorkerRow] | None = None) -> dict:
    rows = list(rows if rows is not None else (*WORKER_ROWS, *THREADED_WORKER_ROWS))
    labels = ", ".join(row.label for row in rows)
    ctx.log(f"choices: {budget.noop_jobs} no-op jobs drained by one process of each: {labels}")
    ctx.stack.stop_web()
    reset_redis(ctx.stack)
    measured = []
    for row in rows:
        drained = _drain_noop_jobs(ctx, row, budget)
        measured.append({"label": row.label, **drained})
        ctx.log(f"    {row.label}: {drained['per_second']:.1f} no-op jobs/s over {drained['span_s']:.2f} s")
    forking = measured[0]["per_second"]
    for row in measured:
        row["vs_forking"] = _ratio(row["per_second"], forking)
    simple_vs_forking = measured[1]["vs_forking"]
    return {
        "jobs": budget.noop_jobs,
        "rows": measured,
        "simple_vs_forking": simple_vs_forking,
        "recommendation": _worker_recommendation(simple_vs_forking, measured),
    }


def _drain_noop_jobs(ctx: Context, row: WorkerRow, budget: ChoicesBudget) -> dict:
    """scenario 4's drain with a worker of our choosing: queue the jobs first, start one burst worker, time
    from the first job's start to the last job's end (so process start-up is not counted)."""
    from rq.job import Job

    from payments.services.dispatch import payments_queue

    stack = ctx.stack
    job_ids = _enqueue_noop_jobs(budget.noop_jobs)
    began = time.monotonic()
    children = row.start(stack)
    argv = [str(part) for part in children[0].process.args]
    stack.wait_workers(children, timeout=budget.drain_timeout)
    wall = time.monotonic() - began
    jobs = [job for job in Job.fetch_many(job_ids, connection=payments_queue().connection) if job is not None]
    finished = [job for job in jobs if job.get_status(refresh=False) == "finished"]
    reset_redis(stack)
    if len(finished) != len(job_ids):
        raise RuntimeError(f"{row.label}: {len(job_ids) - len(finished)} of {len(job_ids)} no-op jobs did not finish")
    first: datetime = min(job.started_at for job in finished)
    last: datetime = max(job.ended_at for job in finished)
    span = max((last - first).total_seconds(), 1e-9)
    return {
        "argv": _shown_command(argv),
        "threads": getattr(children[0], "threads", 1),
        "jobs": len(job_ids),
        "span_s": round(span, 3),
        "per_second": len(job_ids) / span,
        "ms_per_job": span / len(job_ids) * 1000,
        "wall_s_with_startup": round(wall, 3),
    }


def _shown_command(argv: list[str]) -> str:
    """From manage.py on, with a worker's generated --name left out (it changes every run)."""
    shown = argv[argv.index("manage.py") :] if "manage.py" in argv else argv
    if "--name" in shown:
        at = shown.index("--name")
        shown = shown[:at] + shown[at + 2 :]
    return " ".join(shown)


def _worker_recommendation(simple_vs_forking: float, rows: list[dict]) -> str:
    text = (
        f"SimpleWorker runs {simple_vs_forking:.1f}× the forking Worker's no-op jobs/s: the fork per job is most of a "
        "short job's cost. "
    )
    if simple_vs_forking >= WORKER_CLASS_WORTH:
        text += (
            "Run jobs in the worker process (SimpleWorker, or threads on top of it), as runstack does, and give up "
            "the per-job process: a job that crashes the interpreter or leaks takes the worker down, so the "
            "supervisor (runstack, systemd, Kubernetes) restarts it."
        )
    else:
        text += "The gain is small here: keep the forking Worker's isolation."
    simple = rows[1]["per_second"]
    for row in rows[2:]:
        vs_simple = _ratio(row["per_second"], simple)
        text += (
            f" {row['label']} ({row['threads']} threads): {vs_simple:.2f}× SimpleWorker on no-op jobs"
            + (
                ", so its threads cost little where there is nothing to wait for"
                if vs_simple >= 0.8
                else f", so its threads cost {1 - vs_simple:.0%} of the rate where there is nothing to wait for"
            )
            + "; they pay off when jobs wait on the bank (scenario 7)."
        )
    return text


# --- 3: database connections (PostgreSQL) -----------------------------------------------------------------
POOL_SIZE = 10
CONNECTION_SIDES = (  # (key, label, the server's environment); each side says both settings, whatever the defaults
    ("per_request", "no pool, `CONN_MAX_AGE=0`", {"DATABASE_POOL_MAX_SIZE": "0", "DATABASE_CONN_MAX_AGE": "0"}),
    ("pool", f"psycopg pool, max {POOL_SIZE}", {"DATABASE_POOL_MAX_SIZE": str(POOL_SIZE)}),
    # Last: it may run the server out of connections, which daphne gives back when it is stopped.
    ("kept_alive", "no pool, `CONN_MAX_AGE=60`", {"DATABASE_POOL_MAX_SIZE": "0", "DATABASE_CONN_MAX_AGE": "60"}),
)


def compare_connections(ctx: Context, budget: ChoicesBudget) -> dict:
    stack = ctx.stack
    url = stack.env["DATABASE_URL"]
    if not url.startswith("postgres"):
        return {"skipped": "SQLite: one file, no server connections to count or pool; run with PostgreSQL."}
    ctx.log(f"choices: accept path at {budget.pool_concurrency} clients on daphne, per connection setting")
    sides = {}
    for key, label, env in (side for side in CONNECTION_SIDES if side[0] in budget.connection_sides):
        effective = _effective_database_settings(stack, env)
        sides[key] = {"key": key, "label": label, "env": env, "effective": effective}
        if effective != _intended(env):
            sides[key]["skipped"] = f"config/settings.py makes it {effective}, not {_intended(env)}"
            ctx.log(f"    {label}: skipped, {sides[key]['skipped']}")
    runs: dict[str, list[dict]] = {key: [] for key, side in sides.items() if "skipped" not in side}
    with _connection_sampler(url) as sampler:
        for key in _connection_order(list(runs), budget.connection_repeats):
            runs[key].append(_accept_with_connections(ctx, budget, sides[key]["env"], sampler))
    first = next(iter(runs), None)
    for key, side_runs in runs.items():
        sides[key].update(_connection_summary(side_runs))
        sides[key]["vs_first"] = _ratio(sides[key]["rps"], sides[first]["rps"])
    return {
        "concurrency": budget.pool_concurrency,
        "max_connections": sampler.max_connections,
        "sides": list(sides.values()),
        "recommendation": _connection_recommendation(list(sides.values()), sampler.max_connections),
    }


def _connection_order(keys: list[str], repeats: int) -> list[str]:
    """The settings that leave the server usable alternate (A B B A ...); kept-alive connections run once, last,
    as they take the server to its connection limit (daphne gives them back when it stops)."""
    compared = [key for key in keys if key != "kept_alive"]
    order = _interleaved(repeats, *compared) if len(compared) == 2 else compared * repeats
    return order + (["kept_alive"] if "kept_alive" in keys else [])


def _connection_summary(runs: list[dict]) -> dict:
    """Medians over the runs of a setting; the connection counts at their worst."""
    return {
        **{key: statistics.median(run[key] for run in runs) for key in ("rps", "p50_ms", "p99_ms", "errors")},
        "connections_peak": max(run["connections_peak"] for run in runs),
        "connections_after_run": max(run["connections_after_run"] for run in runs),
        "runs": runs,
    }


class _ConnectionSampler:
    """Counts the server connections to one database from pg_stat_activity every few milliseconds on a
    thread, over a connection of its own to the `postgres` database (so it neither counts itself nor needs
    a slot in the bench database when the server runs out)."""

    interval = 0.02

    def __init__(self, url: str) -> None:
        import psycopg

        self.database = url.rsplit("/", 1)[-1].split("?", 1)[0]
        self.conn = psycopg.connect(_with_path(url, "/postgres"), autocommit=True, connect_timeout=5)
        self.max_connections = int(self.conn.execute("SHOW max_connections").fetchone()[0])
        self._samples: list[int] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def count(self) -> int:
        query = "SELECT count(*) FROM pg_stat_activity WHERE datname = %s"
        return self.conn.execute(query, (self.database,)).fetchone()[0]

    def start(self) -> None:
        self._samples, self._stop = [], threading.Event()
        self._thread = threading.Thread(target=self._run, name="pg-connection-sampler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._samples.append(self.count())

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join(timeout=5)
        samples = self._samples or [self.count()]
        return {"peak": max(samples), "median": statistics.median(samples), "samples": len(samples)}

    def close(self) -> None:
        self.conn.close()


@contextmanager
def _connection_sampler(url: str) -> Iterator[_ConnectionSampler]:
    sampler = _ConnectionSampler(url)
    try:
        yield sampler
    finally:
        sampler.close()


def _intended(env: dict[str, str]) -> dict:
    pool = int(env.get("DATABASE_POOL_MAX_SIZE", "0"))
    # Django refuses persistent connections with a pool: with one, CONN_MAX_AGE is 0.
    return {"pool_max_size": pool or None, "conn_max_age": 0 if pool else int(env["DATABASE_CONN_MAX_AGE"])}


def _effective_database_settings(stack: Stack, env: dict[str, str]) -> dict:
    """What config/settings.py makes of a side's environment (an import of the settings module alone, not
    Django): so a side runs only if the settings read its variables as meant, and says what it ran with."""
    probe = (
        "import json, config.settings as s; d = s.DATABASES['default']; "
        "pool = d.get('OPTIONS', {}).get('pool'); "
        "print(json.dumps({'pool_max_size': pool and pool.get('max_size'), 'conn_max_age': d.get('CONN_MAX_AGE')}))"
    )
    done = subprocess.run(  # noqa: S603 - our own argv
        [PYTHON, "-c", probe], env={**stack.env, **env}, cwd=BASE_DIR, capture_output=True, text=True, timeout=60
    )
    if done.returncode != 0:
        raise RuntimeError(f"config/settings.py did not import with {env}:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout)


def _accept_with_connections(ctx: Context, budget: ChoicesBudget, env: dict[str, str], sampler) -> dict:
    stack = ctx.stack
    reset_redis(stack)
    idle = sampler.count()  # the harness's own connection, if it holds one
    stack.start_web(SANDBOX_LATENCY_MS="0", **env)
    try:
        sampler.start()
        try:
            run = run_load(
                ctx,
                ACCEPT_PATH,
                concurrency=budget.pool_concurrency,
                expect_status=202,
                warmup=budget.pool_warmup,
                duration=budget.pool_duration,
            )
        finally:
            connections = sampler.stop()
        still_open = sampler.count()  # after the load, before the server stops
    finally:
        stack.stop_web()
        reset_redis(stack)
    ctx.log(f"    {env}: peak {connections['peak']} server connections, {still_open} still open after the run")
    return {
        "rps": run["rps"],
        "p50_ms": run["p50_ms"],
        "p99_ms": run["p99_ms"],
        "errors": run["errors"],
        "statuses": run["statuses"],
        "error_samples": run["error_samples"][:2],
        "connections_idle_before": idle,
        "connections_peak": connections["peak"],
        "connections_median": connections["median"],
        "connections_after_run": still_open,
        "run": run,
    }


def _connection_recommendation(sides: list[dict], max_connections: int) -> str:
    ran = {side["key"]: side for side in sides if "skipped" not in side}
    per_request, pool, kept = ran.get("per_request"), ran.get("pool"), ran.get("kept_alive")
    parts = []
    if kept:
        piled_up = kept["errors"] > 0 or kept["connections_peak"] >= 0.8 * max_connections
        parts.append(
            f"Kept-alive connections (`CONN_MAX_AGE=60`, no pool) peaked at {kept['connections_peak']} of "
            f"{max_connections} with {kept['errors']} failed requests"
            + (
                ": under daphne each request runs in a thread of its own, and a connection kept per thread outlives "
                "it, so they pile up to the server's limit, past which new connections (and their requests) are "
                "refused, the web server's and everyone else's on that server. Never keep connections alive under "
                "daphne."
                if piled_up
                else "; no pile-up in this short run."
            )
        )
    if pool and per_request:
        ratio = _ratio(pool["rps"], per_request["rps"])
        parts.append(
            f"The pool held the server to {pool['connections_peak']} connections against "
            f"{per_request['connections_peak']} when each request opens its own, at {ratio:.2f}× the throughput: "
            + (
                "keep the pool (no connection set-up per request, a bound the server can plan for)."
                if ratio >= 0.9
                else "it bounds connections at a cost in throughput here; raise DATABASE_POOL_MAX_SIZE and re-measure."
            )
        )
    skipped = [side for side in sides if "skipped" in side]
    parts += [f"{side['label']} did not run ({side['skipped']})." for side in skipped]
    return " ".join(parts)


# --- 4: what the accept path writes -----------------------------------------------------------------------
def accept_writes(ctx: Context, budget: ChoicesBudget | None = None) -> dict:
    """One accepted payment and one ceiling request in-process (DRF's APIClient: the same middleware, views
    and services as under daphne, without the ASGI layer), after one warm-up request of each."""
    from django.conf import settings
    from rest_framework.test import APIClient

    stack = ctx.stack
    ctx.log("choices: the statements and Redis commands of one accept request and one ceiling request")
    reset_redis(stack)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {stack.token}")

    def accept() -> int:
        key = f"choices-{uuid.uuid4().hex}"
        return client.post(ACCEPT_PATH, PAYMENT_BODY, format="json", HTTP_IDEMPOTENCY_KEY=key).status_code

    def ceiling() -> int:
        return client.post(CEILING_PATH, PAYMENT_BODY, format="json").status_code

    try:
        accept(), ceiling()  # warm: imports, the cache's Redis connection, the database connection
        traced = {"accept": trace_request(accept, settings.REDIS_URL)}
        traced["ceiling"] = trace_request(ceiling, settings.REDIS_URL)
    finally:
        reset_redis(stack)
    for name, expect in (("accept", 202), ("ceiling", 200)):
        if traced[name]["status"] != expect:
            raise RuntimeError(f"{name} answered {traced[name]['status']} in-process")
    return {**traced, "database_vendor": _database_vendor(), "recommendation": _writes_summary(traced)}


def trace_request(call: Callable[[], int], redis_url: str) -> dict:
    """The SQL (by transaction and kind) and Redis commands of one call, which returns an HTTP status."""
    from django.db import connections

    from bench.profiling import _queries

    connection = connections["default"]
    events: list[tuple] = []
    status: dict[str, int] = {}
    with _redis_monitor(redis_url) as redis_commands, _statement_log(connection, events):
        captured = _queries(lambda: status.update(code=call()))
    statements = [event for event in events if event[0] == "sql"]
    _check_against_captured(events, captured)
    transactions = group_by_transaction(events)
    return {
        "status": status["code"],
        "statements": len(statements),
        "kinds": dict(Counter(statement["kind"] for group in transactions for statement in group["statements"])),
        "transactions": transactions,
        "write_transactions": count_write_transactions(transactions),
        "tables_written": sorted({s["table"] for g in transactions for s in g["statements"] if s["writes"]}),
        "redis": summarize_redis(redis_commands, redis_url),
    }


# What CaptureQueriesContext logs for Django's own transaction control (PostgreSQL's BEGIN is not sent: psycopg
# opens the transaction with the first statement; SQLite's BEGIN IMMEDIATE is a real statement).
TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK")


def _check_against_captured(events: list[tuple], captured: list[str]) -> None:
    """The statement log must agree with CaptureQueriesContext (profiling's): the same statements, and as
    many ends (COMMIT/ROLLBACK) as the commit/rollback marks."""
    statements = [event[1] for event in events if event[0] == "sql"]
    ends = [event for event in events if event[0] != "sql"]
    captured_statements = [sql for sql in captured if sql not in TRANSACTION_CONTROL]
    captured_ends = [sql for sql in captured if sql in ("COMMIT", "ROLLBACK")]
    if len(statements) != len(captured_statements) or len(ends) != len(captured_ends):
        raise RuntimeError(
            f"statement log: {len(statements)} statements, {len(ends)} ends; CaptureQueriesContext: "
            f"{len(captured_statements)} statements, {len(captured_ends)} ends"
        )


@contextmanager
def _statement_log(connection, events: list[tuple]) -> Iterator[None]:
    """Each statement with whether it ran inside an atomic block, and each commit/rollback: Django's own BEGIN
    and COMMIT do not go through the cursor (so neither CaptureQueriesContext nor an execute wrapper sees
    them), hence the connection's commit/rollback are wrapped for the duration."""

    def wrapper(execute, sql, params, many, context):
        # SQLite's explicit BEGIN runs just before Django marks the block atomic: it opens the transaction.
        events.append(("sql", sql, connection.in_atomic_block or statement_kind(sql) == "BEGIN"))
        return execute(sql, params, many, context)

    def marking(name: str, original: Callable[[], None]) -> Callable[[], None]:
        def mark() -> None:
            events.append((name,))
            original()

        return mark

    connection.commit = marking("commit", connection.commit)
    connection.rollback = marking("rollback", connection.rollback)
    try:
        with connection.execute_wrapper(wrapper):
            yield
    finally:
        del connection.commit, connection.rollback  # back to the class's methods


STATEMENT_TABLE = re.compile(r'\b(?:FROM|INTO|UPDATE)\s+"?([\w.]+)"?', re.IGNORECASE)
WRITE_KINDS = ("INSERT", "UPDATE", "DELETE")


def statement_kind(sql: str) -> str:
    words = sql.split()
    first = words[0].upper() if words else ""
    upper = sql.upper()
    if first == "SELECT" and "FOR UPDATE" in upper:
        return "SELECT … FOR UPDATE"
    if first == "RELEASE":
        return "RELEASE SAVEPOINT"
    if first == "ROLLBACK" and "SAVEPOINT" in upper:
        return "ROLLBACK TO SAVEPOINT"
    return first


def describe_statement(sql: str) -> dict:
    kind = statement_kind(sql)
    table = STATEMENT_TABLE.search(sql)
    return {
        "kind": kind,
        "table": table.group(1) if table and kind not in ("SAVEPOINT", "RELEASE SAVEPOINT") else "",
        "writes": kind in WRITE_KINDS,
        "sql": " ".join(sql.split()),
    }


def count_write_transactions(groups: list[dict]) -> int:
    """An atomic block with writes commits once; outside one, each write is its own (implicit) transaction."""
    return sum((1 if group["atomic"] else group["writes"]) for group in groups if group["writes"])


def group_by_transaction(events: list[tuple]) -> list[dict]:
    """Statements inside an atomic block up to its commit/rollback form one transaction; consecutive
    statements outside any (autocommit, each its own) are shown together."""
    groups: list[dict] = []
    current: dict | None = None
    for event in events:
        if event[0] != "sql":
            if current is not None and current["atomic"]:
                current["end"] = event[0]
                current = None
            continue
        _, sql, atomic = event
        if current is None or current["atomic"] != atomic:
            current = {"atomic": atomic, "end": "commit" if atomic else "autocommit", "statements": []}
            groups.append(current)
        current["statements"].append(describe_statement(sql))
    for group in groups:
        group["writes"] = sum(1 for statement in group["statements"] if statement["writes"])
    return groups


@contextmanager
def _redis_monitor(redis_url: str) -> Iterator[list[dict]]:
    """Every command the Redis server runs while the block runs (MONITOR: the whole server, filtered later
    to the bench's database). The end is marked by an ECHO from a client connected before MONITOR started, so
    that its own handshake is not in the record."""
    import redis

    marker_client = redis.Redis.from_url(redis_url)
    marker_client.ping()
    monitor_client = redis.Redis.from_url(redis_url, socket_timeout=10)
    monitor = monitor_client.monitor()
    recorded: list[dict] = []
    try:
        with monitor:
            yield recorded
            marker = f"bench-choices-end-{uuid.uuid4().hex}"
            marker_client.echo(marker)
            while True:
                command = monitor.next_command()
                if marker in command["command"]:
                    break
                recorded.append(command)
    finally:
        marker_client.close()
        monitor_client.close()


def summarize_redis(commands: list[dict], redis_url: str) -> dict:
    """Commands in the bench's database, by name: sent by the application vs run inside its Lua scripts; and
    new connections, counted by their `SELECT <db>` (sent before the SELECT takes effect, so filed under db 0)."""
    from redis.connection import parse_url

    database = int(parse_url(redis_url).get("db", 0))
    sent: Counter = Counter()
    in_scripts: Counter = Counter()
    new_connections = 0
    for command in commands:
        words = command["command"].split()
        if not words:
            continue
        name = words[0].upper()
        if name == "SELECT" and words[1:2] == [str(database)]:
            new_connections += 1
            continue
        if command["db"] != database:
            continue
        (in_scripts if command["client_type"] == "lua" else sent)[name] += 1
    return {
        "commands": sum(sent.values()),
        "by_command": dict(sent.most_common()),
        "script_commands": sum(in_scripts.values()),
        "script_by_command": dict(in_scripts.most_common()),
        "new_connections": new_connections,
    }


def _database_vendor() -> str:
    from django.db import connection

    return connection.vendor


def _writes_summary(traced: dict) -> str:
    accept, ceiling = traced["accept"], traced["ceiling"]
    kinds = ", ".join(f"{count} {kind}" for kind, count in sorted(accept["kinds"].items(), key=lambda kv: -kv[1]))
    loose = sorted(
        {s["table"] for g in accept["transactions"] if not g["atomic"] for s in g["statements"] if s["writes"]}
    )
    text = (
        f"One accepted payment is {accept['statements']} statements ({kinds}) and {accept['write_transactions']} "
        f"commits of writes (to {', '.join(accept['tables_written'])}), and {accept['redis']['commands']} Redis "
        f"commands; the ceiling request is {ceiling['statements']} statement(s) and {ceiling['redis']['commands']} "
        "Redis commands. Each commit is a WAL flush on PostgreSQL and a turn of the one write lock on SQLite."
    )
    if loose:
        text += f" Written outside any atomic block (a commit each): {', '.join(loose)}."
    return text


# --- the report -------------------------------------------------------------------------------------------
def _f(value, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "—"
    return f"{value:,.{digits}f}"


def details(result: dict) -> list[str]:
    out = ["## Choices settled by the figures", ""]
    out += [
        "Each choice measured side by side in this run (figures indicative: a shared 2-core machine). "
        "The recommendation under each table follows from its figure.",
        "",
    ]
    for part, render in (
        ("servers", _servers_details),
        ("workers", _workers_details),
        ("connections", _connections_details),
        ("writes", _writes_details),
    ):
        if part in result:
            out += render(result[part])
    return out


def _servers_details(s: dict) -> list[str]:
    versions = s["uvicorn_stack"]
    out = [
        "### daphne vs uvicorn for HTTP",
        "",
        f"Both servers up at once on `config.asgi:application` with the bench's settings (uvicorn "
        f"{versions.get('uvicorn')}, one process, uvloop {versions.get('uvloop')}, httptools "
        f"{versions.get('httptools')}; daphne {versions.get('daphne')} on Twisted {versions.get('twisted')}); "
        "each cell's runs interleaved, medians shown; no worker running.",
        "",
        "| endpoint | clients | daphne req/s | p50 / p99 ms | uvicorn req/s | p50 / p99 ms | uvicorn ÷ daphne "
        "| server CPU d / u | new Redis conns/req d / u |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for cell in s["cells"]:
        d, u = cell["daphne"], cell["uvicorn"]
        out.append(
            f"| `{cell['path']}` | {cell['concurrency']} | {_f(d['rps'])} | {_f(d['p50_ms'])} / {_f(d['p99_ms'])} "
            f"| {_f(u['rps'])} | {_f(u['p50_ms'])} / {_f(u['p99_ms'])} | **{cell['ratio']:.2f}** "
            f"| {_f(d['server_cpu_share'] * 100, 0)} % / {_f(u['server_cpu_share'] * 100, 0)} % "
            f"| {_f(d['redis_connections_per_request'], 2)} / {_f(u['redis_connections_per_request'], 2)} |"
        )
    websocket = "; ".join(
        f"{name} first frame in {_f(check.get('first_frame_ms'))} ms" if check.get("ok") else f"{name} failed: {check}"
        for name, check in s["websocket"].items()
    )
    out += [
        "",
        f"WebSockets: one payment accepted, then its `/ws/payments/<id>` opened on the same server: {websocket}"
        ". Resident memory after the runs: "
        + ", ".join(f"{name} {_f(rss)} MiB" for name, rss in s["rss_mib_after"].items())
        + ". uvicorn carries the Channels consumers unchanged (ASGI websocket over the `websockets` library); "
        "what it would change for the 5,000 waiting sockets (memory per connection, ping/timeouts) is scenario "
        "6's figure to re-measure before moving WebSockets.",
        "",
        f"**Recommendation.** {s['recommendation']}",
        "",
    ]
    return out


def _workers_details(w: dict) -> list[str]:
    out = [
        "### The RQ worker class",
        "",
        f"{w['jobs']:,} no-op jobs (`bench.jobs.noop_job`, queued like a payment's job) drained by one burst "
        "process of each kind on the same queue, one after the other; the rate runs from the first job's start "
        "to the last job's end (RQ's own stamps), so start-up is left out.",
        "",
        "| worker | command | threads | no-op jobs/s | ms of the span per job | ÷ forking |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for row in w["rows"]:
        out.append(
            f"| {row['label']} | `{row['argv']}` | {row['threads']} | {_f(row['per_second'])} "
            f"| {_f(row['ms_per_job'], 2)} | **{row['vs_forking']:.2f}** |"
        )
    out += ["", f"**Recommendation.** {w['recommendation']}", ""]
    return out


def _connections_details(c: dict) -> list[str]:
    out = ["### Database connections", ""]
    if "skipped" in c:
        return out + [c["skipped"], ""]
    out += [
        f"The accept path on daphne at {c['concurrency']} clients, a fresh daphne per run with the setting in its "
        "environment; the per-request and pool runs alternate (medians shown), the kept-alive run comes once, last. "
        "Server connections to the bench database sampled from `pg_stat_activity` every 20 ms, the worst run shown "
        f"(PostgreSQL's max_connections: {c['max_connections']}).",
        "",
        "| setting | req/s | ÷ first | p50 / p99 ms | errors | peak connections | still open after |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for side in c["sides"]:
        if "skipped" in side:
            out.append(f"| {side['label']} | not run: {side['skipped']} | | | | | |")
            continue
        out.append(
            f"| {side['label']} | {_f(side['rps'])} | {side['vs_first']:.2f} | {_f(side['p50_ms'])} / "
            f"{_f(side['p99_ms'])} | {_f(side['errors'], 0)} | {side['connections_peak']} "
            f"| {side['connections_after_run']} |"
        )
    out += ["", f"**Recommendation.** {c['recommendation']}", ""]
    return out


def _writes_details(w: dict) -> list[str]:
    out = [
        "### What the accept path writes",
        "",
        f"One request of each in-process on {w['database_vendor']} (DRF's APIClient, after a warm-up request): "
        "statements from an execute wrapper, checked against `CaptureQueriesContext`, grouped by transaction "
        "(an atomic block runs to the connection's commit; PostgreSQL's BEGIN is implicit); Redis "
        "commands from MONITOR in the bench's database (in-process every Redis client keeps its connection; the new "
        "connections per request under a server are in the server table).",
        "",
        "| request | statements | write transactions | by kind | Redis commands | in Lua scripts | new Redis conns |",
        "|---|---:|---:|---|---|---:|---:|",
    ]
    for name in ("accept", "ceiling"):
        t = w[name]
        kinds = ", ".join(f"{count} {kind}" for kind, count in t["kinds"].items())
        redis_kinds = ", ".join(f"{count} {cmd}" for cmd, count in t["redis"]["by_command"].items())
        out.append(
            f"| {name} | {t['statements']} | {t['write_transactions']} | {kinds} | {t['redis']['commands']}: "
            f"{redis_kinds} | {t['redis']['script_commands']} | {t['redis']['new_connections']} |"
        )
    out += ["", "The accept request, transaction by transaction:", "", "```text"]
    for number, group in enumerate(w["accept"]["transactions"], start=1):
        head = f"atomic block, ends in {group['end']}" if group["atomic"] else "outside a transaction (autocommit)"
        out.append(f"{number}. {head}")
        for statement in group["statements"]:
            out.append(f"  {statement['kind']:<22} {statement['table']}")
    out += ["```", "", f"**Reading.** {w['recommendation']}", ""]
    return out


# --- alone: python -m bench.choices -----------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    import argparse
    import os

    from bench.scenarios import DEFAULT, QUICK
    from bench.stack import BENCH_ENV

    parser = argparse.ArgumentParser(prog="python -m bench.choices", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"some of {','.join(PARTS)}")
    parser.add_argument("--database-url", default=None, help="default: DATABASE_URL, else SQLite")
    parser.add_argument("--database-name", default="checkout_bench_choices")
    parser.add_argument("--redis-url", default=None, help="a Redis database the run may empty")
    parser.add_argument("--json", default=None, help="also write the result here")
    args = parser.parse_args(argv)
    began = time.monotonic()

    def log(message: str) -> None:
        print(f"[{time.monotonic() - began:6.1f} s] {message}", flush=True)

    stamp = datetime.now().strftime("%Y%m%dT%H%M%S")
    stack = Stack(
        log_dir=BASE_DIR / "var" / "bench" / "logs" / f"choices-{stamp}",
        database_url=args.database_url,
        redis_url=args.redis_url,
        database_name=args.database_name,
    )
    try:
        stack.setup()
        os.environ.update({key: stack.env[key] for key in (*BENCH_ENV, "DATABASE_URL", "REDIS_URL")})
        import django

        django.setup()
        stack.create_user_token()
        log(f"database: {stack.database_kind}; Redis: {stack.redis_kind}")
        ctx = Context(stack=stack, budget=QUICK if args.quick else DEFAULT, log=log)
        result = choices(ctx, parts=[part.strip() for part in args.parts.split(",") if part.strip()])
    finally:
        stack.close()
    log("done")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=1)  # as report.write_json: no default=, so it must be plain JSON
    print("\n".join(details(result)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
