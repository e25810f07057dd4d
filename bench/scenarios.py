"""The issue's scenarios 1–4, each measured side by side with its reference in one run.

Every function takes a `Context` (the stack, the budget and a logger) and returns a plain dict: the raw runs
and the ratio its target is about. The stack is left as it was found (no web server, no worker, an empty
Redis), so scenarios can run in any order or alone.
"""

from __future__ import annotations

import json
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime

from bench.load import LoadSpec
from bench.stack import Sampler, Stack, cpu_seconds, cpu_shares, process_rss_mib, run_python

ACCEPT_PATH = "/api/v1/payments"
CEILING_PATH = "/api/v1/bench/ceiling"
SYNC_PATH = "/api/v1/bench/payments-sync"
NOOP_JOB = "bench.jobs.noop_job"
SLOW_BANK_MS = 2000
RUN_WORKERS = 2  # what `make run` starts (RQ_WORKERS default of runstack)


@dataclass(frozen=True, kw_only=True)
class Budget:
    name: str
    warmup: float  # seconds of load before each measured window
    duration: float  # each measured window
    repeats: int  # runs of each side of a comparison, interleaved A B B A
    concurrencies: tuple[int, ...] = (1, 16, 64)  # scenario 1's clients
    s2_concurrency: int = 16
    s3_concurrency: int = 64
    s3_warmup: float  # the sync endpoint needs a full gateway latency of warm-up
    s3_duration: float
    s4_jobs: int  # jobs drained in each scenario-4 run
    s4_timeout: float  # bound on one drain
    s7_payments: int  # payments settled in each scenario-7 run
    max_requests: int  # bound on requests in one load run
    profile_requests: int
    server_profile: bool  # py-spy on daphne under load (a few seconds more)


QUICK = Budget(
    name="quick",
    warmup=0.3,
    duration=1.0,
    repeats=1,
    s3_warmup=2.1,
    s3_duration=2.0,
    s4_jobs=60,
    s4_timeout=60,
    s7_payments=120,
    max_requests=5_000,
    profile_requests=30,
    server_profile=False,
)
DEFAULT = Budget(
    name="default",
    warmup=1.0,
    duration=5.0,
    repeats=2,
    s3_warmup=3.0,
    s3_duration=8.0,
    s4_jobs=1000,
    s4_timeout=240,
    s7_payments=800,
    max_requests=50_000,
    profile_requests=300,
    server_profile=True,
)


@dataclass
class Context:
    stack: Stack
    budget: Budget
    log: Callable[[str], None] = print


# --- helpers ----------------------------------------------------------------------------------------------
def reset_redis(stack: Stack) -> None:
    """Empty the bench's Redis database: queue, jobs, registries, throttle counts. Only with no worker up."""
    import redis

    assert not stack.workers, "reset_redis with workers running"
    client = redis.Redis.from_url(stack.env["REDIS_URL"])
    try:
        client.flushdb()
    finally:
        client.close()


@contextmanager
def serving(stack: Stack, *, daphnes: int = 1, workers: int = 0, **env: str) -> Iterator[list[str]]:
    """For the block: an empty Redis, `daphnes` daphne processes and `workers` worker processes (each with every
    thread registered) on `env`; yields the daphne processes' base URLs. Afterwards every process is stopped
    and Redis emptied again, so that the next measurement starts from nothing."""
    reset_redis(stack)
    try:
        urls = [stack.start_web(**env)] + [stack.start_extra_web(**env) for _ in range(daphnes - 1)]
        if workers:
            stack.start_workers(workers, **env)
            stack.wait_workers_ready()
        yield urls
    finally:
        stack.stop_workers()
        stack.stop_extra_webs()
        stack.stop_web()
        reset_redis(stack)


# Not counted as the application's commands: our own INFO, and a new connection's handshake.
REDIS_OVERHEAD_COMMANDS = ("cmdstat_info", "cmdstat_hello", "cmdstat_client|setinfo")


def redis_counters(client) -> tuple[int, int]:
    """(commands processed, connections received) so far by the Redis server `client` talks to; the commands
    leave out INFO and the connection handshake (HELLO, CLIENT SETINFO), which the connection count stands for.
    Ask the same client before and after: its own connection is then counted in neither difference."""
    stats = client.info("commandstats")
    commands = sum(entry["calls"] for name, entry in stats.items() if name not in REDIS_OVERHEAD_COMMANDS)
    return commands, client.info("stats")["total_connections_received"]


def run_client(module: str, *args: str, spec, timeout: float) -> dict:
    """A load client (bench.load, bench.ws_load) in a process of its own, so that its CPU is not the servers';
    its JSON result."""
    return json.loads(run_python("-m", module, *args, "--spec", json.dumps(asdict(spec)), timeout=timeout))


def run_load_client(spec: LoadSpec) -> dict:
    return run_client("bench.load", spec=spec, timeout=spec.max_warmup + spec.duration + spec.timeout + 60)


def run_load(ctx: Context, path: str, *, concurrency: int, expect_status: int, warmup=None, duration=None) -> dict:
    """One load run from a separate client process; adds the server processes' CPU over the run."""
    import redis

    stack, budget = ctx.stack, ctx.budget
    spec = LoadSpec(
        url=stack.web_url + path,
        concurrency=concurrency,
        duration=budget.duration if duration is None else duration,
        warmup=budget.warmup if warmup is None else warmup,
        max_requests=budget.max_requests,
        token=stack.token,
        expect_status=expect_status,
    )
    watched = stack.server_pids()
    cpu_before = cpu_seconds(watched)
    counter = redis.Redis.from_url(stack.env["REDIS_URL"])
    try:
        redis_before = redis_counters(counter)
        result = run_load_client(spec)
        redis_after = redis_counters(counter)
    finally:
        counter.close()
    sent = max(result["sent_total"], 1)
    # Over the whole run, warm-up included; workers' commands count too when workers are up.
    result["redis_connections_per_request"] = round((redis_after[1] - redis_before[1]) / sent, 2)
    result["redis_commands_per_request"] = round((redis_after[0] - redis_before[0]) / sent, 2)
    result["server_cpu_share"] = cpu_shares(cpu_before, cpu_seconds(watched), result["elapsed_s"])
    result["path"] = path
    ctx.log(
        f"    {path} c={concurrency}: {result['rps']:.1f} req/s, p50 {result['p50_ms']:.1f} ms, "
        f"p99 {result['p99_ms']:.1f} ms, errors {result['errors']}, client CPU {result['client_cpu_share']:.0%}, "
        f"server CPU {result['server_cpu_share']}, Redis connections/request {result['redis_connections_per_request']}"
    )
    if result["ok"] == 0:
        raise RuntimeError(f"no successful request to {path}: {result['error_samples']}")
    return result


def _median(runs: list[dict], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def _summary(runs: list[dict]) -> dict:
    """The median of each figure over repeated runs (one run: that run)."""
    return {
        key: _median(runs, key)
        for key in ("rps", "p50_ms", "p90_ms", "p99_ms", "client_cpu_share", "errors", "completed")
    }


def interleaved(repeats: int, first: str, second: str) -> list[str]:
    """A B B A A B ...: drift on a noisy machine hits both sides alike."""
    order: list[str] = []
    for repeat in range(repeats):
        order += [first, second] if repeat % 2 == 0 else [second, first]
    return order


def ratio_of(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else float("nan")


# --- 1: the accept path against the stack's ceiling -------------------------------------------------------
ACCEPT_TARGET = 0.75  # issue 12: at 1, 16 and 64 clients, on PostgreSQL


def scenario_1(ctx: Context) -> dict:
    stack, budget = ctx.stack, ctx.budget
    ctx.log("scenario 1: POST /api/v1/payments vs a trivial authenticated DRF endpoint (no workers)")
    rows = []
    with serving(stack, SANDBOX_LATENCY_MS="0"):
        for concurrency in budget.concurrencies:
            runs: dict[str, list[dict]] = {"ceiling": [], "accept": []}
            for side in interleaved(budget.repeats, "ceiling", "accept"):
                path, expect = (CEILING_PATH, 200) if side == "ceiling" else (ACCEPT_PATH, 202)
                runs[side].append(run_load(ctx, path, concurrency=concurrency, expect_status=expect))
            accept, ceiling = _summary(runs["accept"]), _summary(runs["ceiling"])
            ratio = ratio_of(accept["rps"], ceiling["rps"])
            rows.append(
                {"concurrency": concurrency, "accept": accept, "ceiling": ceiling, "ratio": ratio, "runs": runs}
            )
    worst = min(row["ratio"] for row in rows)
    return {"rows": rows, "figure": worst, "target": ACCEPT_TARGET, "met": worst >= ACCEPT_TARGET}


# --- 2: the accept path does not wait for the bank --------------------------------------------------------
def scenario_2(ctx: Context) -> dict:
    stack, budget = ctx.stack, ctx.budget
    ctx.log(f"scenario 2: accept throughput at gateway latency 0 vs {SLOW_BANK_MS} ms ({RUN_WORKERS} workers up)")
    sides = {}
    for latency in (0, SLOW_BANK_MS):
        with serving(stack, workers=RUN_WORKERS, SANDBOX_LATENCY_MS=str(latency)):
            settled_before = _settled_count()
            runs = [
                run_load(ctx, ACCEPT_PATH, concurrency=budget.s2_concurrency, expect_status=202)
                for _ in range(budget.repeats)
            ]
        sides[latency] = {
            "latency_ms": latency,
            "summary": _summary(runs),
            "settled_during_runs": _settled_count() - settled_before,
            "runs": runs,
        }
    ratio = ratio_of(sides[SLOW_BANK_MS]["summary"]["rps"], sides[0]["summary"]["rps"])
    return {
        "concurrency": budget.s2_concurrency,
        "workers": RUN_WORKERS,
        "fast": sides[0],
        "slow": sides[SLOW_BANK_MS],
        "figure": ratio,
        "target": 0.9,
        "met": ratio >= 0.9,
    }


def _settled_count() -> int:
    from payments.models import Payment

    return Payment.objects.filter(status__in=["succeeded", "failed"]).count()


# --- 3: the synchronous design the story argues against ---------------------------------------------------
def scenario_3(ctx: Context) -> dict:
    stack, budget = ctx.stack, ctx.budget
    concurrency = budget.s3_concurrency
    ctx.log(f"scenario 3: async accept vs a synchronous inline-gateway endpoint, {SLOW_BANK_MS} ms, c={concurrency}")
    with serving(stack, SANDBOX_LATENCY_MS=str(SLOW_BANK_MS)):
        accept = run_load(ctx, ACCEPT_PATH, concurrency=concurrency, expect_status=202)
        sync = run_load(
            ctx,
            SYNC_PATH,
            concurrency=concurrency,
            expect_status=200,
            warmup=budget.s3_warmup,
            duration=budget.s3_duration,
        )
    ratio = ratio_of(accept["rps"], sync["rps"])
    return {
        "concurrency": concurrency,
        "latency_ms": SLOW_BANK_MS,
        "accept": accept,
        "sync": sync,
        "figure": ratio,
        "target": 20.0,
        "met": ratio >= 20.0,
    }


# --- 4: worker throughput against the queue's ceiling -----------------------------------------------------
def scenario_4(ctx: Context) -> dict:
    stack, budget = ctx.stack, ctx.budget
    count = budget.s4_jobs
    ctx.log(f"scenario 4: {count} payments vs {count} no-op jobs drained by 1 and 2 worker processes (latency 0)")
    stack.stop_web()
    rows = []
    for workers in (1, 2):
        noop = drain(ctx, workers, _enqueue_noop_jobs(count))
        payments = drain(ctx, workers, pending_payment_jobs(count), check_payments=True)
        rows.append(
            {
                "workers": workers,
                "noop": noop,
                "payments": payments,
                "ratio": ratio_of(payments["per_second"], noop["per_second"]),
            }
        )
    reset_redis(stack)
    worst = min(row["ratio"] for row in rows)
    return {"jobs": count, "rows": rows, "figure": worst, "target": 0.5, "met": worst >= 0.5}


def _enqueue_noop_jobs(count: int) -> list[str]:
    """`count` no-op jobs, enqueued with the options of a payment's job (payments/services/dispatch.py)."""
    import django_rq
    from rq import Queue

    from payments.services.dispatch import PAYMENTS_QUEUE, job_options

    queue = django_rq.get_queue(PAYMENTS_QUEUE)
    stamp = time.time_ns()
    datas = []
    for number in range(count):
        options = job_options(NOOP_JOB, number, job_id=f"noop-{stamp}-{number}")
        datas.append(Queue.prepare_data(NOOP_JOB, (str(number),), timeout=options.pop("job_timeout"), **options))
    with queue.connection.pipeline() as pipe:
        jobs = queue.enqueue_many(datas, pipeline=pipe)
        pipe.execute()
    return [job.id for job in jobs]


def bench_card_number(serial: int) -> str:
    """A distinct, Luhn-valid Visa number per payment (every shopper has their own card); never a sandbox
    test card (those start 4000 0000 0000)."""
    from payments.cards import luhn_valid

    body = f"4111{serial:011d}"
    return next(body + digit for digit in "0123456789" if luhn_valid(body + digit))


_card_serial = 0  # every payment the harness records has a card of its own
RECORD_BATCH = 250  # payments per transaction while recording: one commit per batch, not per payment


def record_pending_payments(count: int) -> list:
    """`count` pending payments recorded the way the accept path does (tokenize, payment_create, whose
    after-commit enqueue queues each job as its batch commits), each with its own card, while no worker runs."""
    from django.contrib.auth import get_user_model
    from django.db import transaction

    from bench.stack import BENCH_USERNAME
    from payments.cards import validate_card
    from payments.models import Actor
    from payments.services.cards import card_tokenize
    from payments.services.payments import payment_create

    global _card_serial
    user = get_user_model().objects.get(username=BENCH_USERNAME)
    payments = []
    for start in range(0, count, RECORD_BATCH):
        with transaction.atomic():
            for _ in range(min(RECORD_BATCH, count - start)):
                _card_serial += 1
                card = validate_card(number=bench_card_number(_card_serial), exp_month=12, exp_year=2030, cvc="123")
                payment = payment_create(
                    amount=2400, currency="USD", card=card_tokenize(card), actor=Actor.API, owner_user=user
                )
                payments.append(payment)
    return payments


def pending_payment_jobs(count: int) -> list[str]:
    """The job ids of `count` pending payments (record_pending_payments)."""
    from payments.services.dispatch import payment_job_id

    return [payment_job_id(payment.pk) for payment in record_pending_payments(count)]


def drain(ctx: Context, workers: int, job_ids: list[str], *, check_payments: bool = False, latency_ms: int = 0) -> dict:
    """Start `workers` burst worker processes on the queued jobs; the rate is from the jobs' own start/end
    stamps (the first job's start to the last job's end), so process start-up is not counted. `settled_per_second`
    counts completions between the first and the last job's end: the steady rate, without the first
    gateway latency it takes to fill the pipeline (which would otherwise count against the slow bank)."""
    import django_rq
    from rq.job import Job

    stack = ctx.stack
    connection = django_rq.get_queue("payments").connection
    began = time.monotonic()
    children = stack.start_workers(workers, burst=True, SANDBOX_LATENCY_MS=str(latency_ms))
    with RssSampler([child.pid for child in children]) as rss:
        stack.wait_workers(children, timeout=ctx.budget.s4_timeout)
    wall = time.monotonic() - began
    jobs = [job for job in Job.fetch_many(job_ids, connection=connection) if job is not None]
    finished = [job for job in jobs if job.get_status(refresh=False) == "finished"]
    if len(finished) != len(job_ids):
        raise RuntimeError(f"{len(job_ids) - len(finished)} of {len(job_ids)} jobs did not finish")
    first: datetime = min(job.started_at for job in finished)
    last: datetime = max(job.ended_at for job in finished)
    span = max((last - first).total_seconds(), 1e-9)
    ends = sorted(job.ended_at for job in finished)
    completion_span = max((ends[-1] - ends[0]).total_seconds(), 1e-9)
    result = {
        "jobs": len(job_ids),
        "threads_per_process": children[0].threads,
        "latency_ms": latency_ms,
        "span_s": round(span, 3),
        "per_second": len(job_ids) / span,
        "settled_per_second": (len(ends) - 1) / completion_span,
        "most_in_flight": most_running_at_once(finished),
        "workers_peak_rss_mib": round(rss.peak_total_mib, 1),
        "wall_s_with_startup": round(wall, 3),
    }
    if check_payments:
        from payments.models import Payment

        payment_ids = [job_id.removeprefix("payment-") for job_id in job_ids]
        outcomes = dict(Counter(Payment.objects.filter(pk__in=payment_ids).values_list("status", flat=True)))
        result["outcomes"] = outcomes
        if outcomes.get("succeeded", 0) != len(job_ids):
            raise RuntimeError(f"not every payment succeeded: {outcomes}")
    kind = "payments" if check_payments else "no-op jobs"
    ctx.log(f"    {workers} worker(s), {len(job_ids)} {kind}: {result['per_second']:.1f}/s over {span:.2f} s")
    reset_redis(stack)
    return result


def most_running_at_once(jobs) -> int:
    """From the jobs' own start/end stamps: the largest number running at the same moment."""
    edges = sorted([(job.started_at, 1) for job in jobs] + [(job.ended_at, -1) for job in jobs])
    running = most = 0
    for _, step in edges:
        running += step
        most = max(most, running)
    return most


class RssSampler(Sampler):
    """The summed resident memory of some processes, sampled every 0.2 s; keeps the peak."""

    def __init__(self, pids: list[int]) -> None:
        super().__init__()
        self.pids, self.peak_total_mib = pids, 0.0

    def sample(self) -> None:
        total = sum(value for pid in self.pids if (value := process_rss_mib(pid)) == value)  # NaN: gone
        self.peak_total_mib = max(self.peak_total_mib, total)


# --- 7: the worker side under a slow bank ------------------------------------------------------------------
def scenario_7(ctx: Context) -> dict:
    """Payments settled per second with the bank at 2,000 ms vs 0 ms, by the worker setup `make run` uses
    (RUN_WORKERS payments_worker processes with their default threads), the same payments queued each time."""
    stack, budget = ctx.stack, ctx.budget
    count = budget.s7_payments
    ctx.log(f"scenario 7: {count} payments settled by {RUN_WORKERS} worker processes, gateway 0 vs {SLOW_BANK_MS} ms")
    stack.stop_web()
    reset_redis(stack)
    runs: dict[str, list[dict]] = {"0": [], str(SLOW_BANK_MS): []}
    for side in interleaved(budget.repeats, "0", str(SLOW_BANK_MS)):
        runs[side].append(
            drain(ctx, RUN_WORKERS, pending_payment_jobs(count), check_payments=True, latency_ms=int(side))
        )
    fast = statistics.median(run["settled_per_second"] for run in runs["0"])
    slow = statistics.median(run["settled_per_second"] for run in runs[str(SLOW_BANK_MS)])
    in_flight = max(run["most_in_flight"] for run in runs[str(SLOW_BANK_MS)])
    peak_rss = max(run["workers_peak_rss_mib"] for run in runs[str(SLOW_BANK_MS)])
    one_call_process = _single_thread_worker_rss(ctx)
    ratio = ratio_of(slow, fast)
    return {
        "payments": count,
        "processes": RUN_WORKERS,
        "threads_per_process": runs["0"][0]["threads_per_process"],
        "fast_per_second": fast,
        "slow_per_second": slow,
        "most_in_flight": in_flight,
        "littles_law_bound_per_second": in_flight / (SLOW_BANK_MS / 1000),
        "workers_peak_rss_mib": peak_rss,
        "mib_per_call_in_flight_threads": peak_rss / max(in_flight, 1),
        "mib_per_call_in_flight_processes": one_call_process,
        "runs": runs,
        "figure": ratio,
        "target": 0.5,
        "met": ratio >= 0.5,
    }


def _single_thread_worker_rss(ctx: Context) -> float:
    """The other way to keep calls in flight, one process per call: what one idle single-thread worker holds."""
    stack = ctx.stack
    (child,) = stack.start_workers(1, threads=1)
    try:
        stack.wait_workers_ready()
        return round(process_rss_mib(child.pid), 1)
    finally:
        stack.stop_workers()
        reset_redis(stack)
