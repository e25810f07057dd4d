"""The scale-out run (issue 6): does throughput rise with processes on one Redis and one database?

Side by side in one run, 1 process against 2 of the same kind: (a) accept throughput against one and two
daphne processes, the load client dealing its connections round-robin to their ports (no load balancer); (b)
settled/s of the same pending payments drained by 1 and by 2 worker processes (scenario 4's `drain`); (c) the
whole system, 1 daphne + 1 worker against 2 + 2, accepting and settling at once. Every figure comes with the
CPU it cost over its window (each server process, the load client, the machine's busy cores), so that the
report can say what limits scaling here. details() writes how each is measured, as the report gives it.
`python -m bench.run --scenarios scale` runs it alone.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench import scenarios as base
from bench.load import LoadSpec
from bench.record import fmt, pct, table, yes
from bench.scenarios import ACCEPT_PATH, Context, ratio_of, reset_redis, serving
from bench.stack import Sampler, process_cpu_seconds

TARGET = "> 1 (rises)"
SAMPLE_SECONDS = 0.1  # CPU sampling period; windows are whole seconds, so the error is a few per cent at most


@dataclass(frozen=True)
class Sizes:
    concurrency: int  # clients of the accept load in (a) and (c)
    jobs: int  # payments drained by each side of (b)
    combined_repeats: int  # runs per side of (c); each one starts and stops its processes


SIZES = {
    "quick": Sizes(concurrency=64, jobs=40, combined_repeats=1),
    "default": Sizes(concurrency=64, jobs=300, combined_repeats=1),  # (c) restarts its processes per run
}
SIDES = ("1", "2")  # processes of each kind; strings, as they are JSON keys
CPU_COLUMNS = "cores busy | load client CPU | servers' CPU"


# --- CPU over a window ------------------------------------------------------------------------------------
def _machine_busy_seconds() -> float:
    """CPU time the whole machine has spent busy (all cores; /proc/stat, idle and iowait left out)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


class CpuSampler(Sampler):
    """Samples, on a thread, the machine's busy CPU time and each watched process's CPU time, so that shares
    over any window inside the sampling (a load run's measured window, a drain's span) can be read afterwards.

    `watched()` names the processes at each sample ({"daphne 1": [pid], "workers": [pid, pid]}): processes
    that start or stop while sampling (a drain's burst workers) are counted over the part of the window in
    which they were sampled at both ends.
    """

    interval = SAMPLE_SECONDS

    def __init__(self, watched: Callable[[], dict[str, list[int]]]) -> None:
        super().__init__()
        self._watched = watched
        self._samples: list[tuple[float, float, dict[str, dict[int, float]]]] = []

    def sample(self) -> None:
        processes = {name: {pid: process_cpu_seconds(pid) for pid in pids} for name, pids in self._watched().items()}
        self._samples.append((time.time(), _machine_busy_seconds(), processes))

    def shares(self, start_unix: float, end_unix: float) -> dict:
        """Between the first sample at or after `start_unix` and the last at or before `end_unix`: cores busy
        on the machine, and each watched name's CPU as a share of one core (1.0 = one core all the time)."""
        inside = [sample for sample in self._samples if start_unix <= sample[0] <= end_unix]
        if len(inside) < 2:
            inside = self._samples  # a window shorter than the sampling period: the whole sampling
        (t0, busy0, procs0), (t1, busy1, procs1) = inside[0], inside[-1]
        span = max(t1 - t0, 1e-9)
        processes = {}
        for name, pids in procs1.items():
            both = [pid for pid in pids if pid in procs0.get(name, {})]
            used = sum(procs1[name][pid] - procs0[name][pid] for pid in both)
            processes[name] = round(used / span, 3) if both and used == used else None  # NaN: a process ended
        return {
            "seconds": round(span, 3),
            "machine_cores_busy": round((busy1 - busy0) / span, 2),
            "processes": processes,
        }


# --- one load run against one or more daphne processes ----------------------------------------------------
def _server_pids(ctx: Context) -> dict[str, list[int]]:
    stack = ctx.stack
    watched = {}
    for number, child in enumerate(([stack.web] if stack.web else []) + stack.extra_webs, 1):
        watched[f"daphne {number}"] = [child.pid]
    if stack.workers:
        watched["workers"] = [worker.pid for worker in stack.workers]
    return watched


def _load(ctx: Context, urls: list[str], concurrency: int) -> dict:
    """One closed-loop accept run from a separate client process, its clients spread over `urls`; adds the CPU
    shares over its measured window and the payments settled in that window."""
    budget = ctx.budget
    spec = LoadSpec(
        url=urls[0],
        urls=urls,
        concurrency=concurrency,
        duration=budget.duration,
        warmup=budget.warmup,
        max_requests=budget.max_requests,
        token=ctx.stack.token,
        expect_status=202,
    )
    with CpuSampler(lambda: _server_pids(ctx)) as sampler:
        result = base.run_load_client(spec)
    if result["ok"] == 0:
        raise RuntimeError(f"no payment accepted: {result['error_samples']}")
    start, end = result["window_start_unix"], result["window_end_unix"]
    result["cpu"] = sampler.shares(start, end)
    result["settled_in_window"] = _settled_between(start, end)
    result["settled_per_s"] = result["settled_in_window"] / max(result["window_s"], 1e-9)
    ctx.log(
        f"    {len(urls)} daphne, c={concurrency}: {result['rps']:.1f} accepted/s "
        f"(per port {list(result['ok_by_url'].values())}), {result['settled_per_s']:.1f} settled/s, "
        f"p99 {result['p99_ms']:.0f} ms, errors {result['errors']}, client CPU {result['client_cpu_share']:.0%}, "
        f"machine {result['cpu']['machine_cores_busy']} cores busy, servers {result['cpu']['processes']}"
    )
    return result


def _settled_between(start_unix: float, end_unix: float) -> int:
    """Payments that reached an outcome (succeeded or failed) in the window, by their last update."""
    from datetime import UTC, datetime

    from payments.models import Payment, PaymentStatus

    return Payment.objects.filter(
        status__in=[PaymentStatus.SUCCEEDED, PaymentStatus.FAILED],
        updated_at__gte=datetime.fromtimestamp(start_unix, UTC),
        updated_at__lte=datetime.fromtimestamp(end_unix, UTC),
    ).count()


def _median(runs: list[dict], read: Callable[[dict], float]) -> float:
    return statistics.median(read(run) for run in runs)


def _side(runs: list[dict], **figures: str) -> dict:
    """One side of a comparison: the median over its runs of each figure (name=the runs' key), the errors, and
    the CPU: cores busy, the load client's share of a core, and the servers' (every daphne and worker process)."""
    return {
        **{name: _median(runs, lambda r, key=key: r[key]) for name, key in figures.items()},
        "errors": sum(r["errors"] for r in runs),
        "cpu": {
            "machine_cores_busy": _median(runs, lambda r: r["cpu"]["machine_cores_busy"]),
            "client": _median(runs, lambda r: r["client_cpu_share"]),
            "servers": _median(runs, lambda r: sum(v for v in r["cpu"]["processes"].values() if v is not None)),
        },
        "runs": runs,
    }


# --- (a) accept throughput: 1 vs 2 daphne -----------------------------------------------------------------
def _accept_side_by_side(ctx: Context, sizes: Sizes) -> dict:
    stack = ctx.stack
    ctx.log(f"  (a) accept throughput, {sizes.concurrency} clients, no worker: 1 vs 2 daphne processes")
    runs: dict[str, list[dict]] = {side: [] for side in SIDES}
    with serving(stack, daphnes=2, SANDBOX_LATENCY_MS="0") as webs:
        urls = [web + ACCEPT_PATH for web in webs]  # the 1-process side posts to the first only
        for side in base.interleaved(ctx.budget.repeats, *SIDES):
            runs[side].append(_load(ctx, urls[: int(side)], sizes.concurrency))
    sides = {side: _side(runs[side], rps="rps", p50_ms="p50_ms", p99_ms="p99_ms") for side in SIDES}
    return {"concurrency": sizes.concurrency, "sides": sides, "ratio": ratio_of(sides["2"]["rps"], sides["1"]["rps"])}


# --- (b) settled/s: 1 vs 2 worker processes ---------------------------------------------------------------
def _settle_side_by_side(ctx: Context, sizes: Sizes) -> dict:
    stack = ctx.stack
    ctx.log(f"  (b) settled/s, {sizes.jobs} pre-queued payments: 1 vs 2 worker processes (latency 0)")
    stack.stop_web()
    reset_redis(stack)
    sides = {}
    for side in SIDES:
        job_ids = base.pending_payment_jobs(sizes.jobs)
        with CpuSampler(lambda: _server_pids(ctx)) as sampler:
            drained = base.drain(ctx, int(side), job_ids, check_payments=True)
        start, end = _job_span_unix(job_ids)
        drained["cpu"] = sampler.shares(start, end)
        sides[side] = drained
    return {"jobs": sizes.jobs, "sides": sides, "ratio": ratio_of(sides["2"]["per_second"], sides["1"]["per_second"])}


def _job_span_unix(job_ids: list[str]) -> tuple[float, float]:
    """The drain's span in wall-clock time: the first payment job's start to the last one's end, read back from
    the database (the payments' own stamps: Redis was emptied by `drain`)."""
    from django.db.models import Max, Min

    from payments.models import PaymentEvent

    payment_ids = [job_id.removeprefix("payment-") for job_id in job_ids]
    span = PaymentEvent.objects.filter(payment_id__in=payment_ids, seq__gt=1).aggregate(
        first=Min("created_at"), last=Max("created_at")
    )
    return span["first"].timestamp(), span["last"].timestamp()


# --- (c) the whole system: 1 daphne + 1 worker vs 2 daphne + 2 workers ------------------------------------
def _combined_side_by_side(ctx: Context, sizes: Sizes) -> dict:
    stack = ctx.stack
    ctx.log(f"  (c) accept load ({sizes.concurrency} clients) with workers settling: 1+1 vs 2+2 processes")
    runs: dict[str, list[dict]] = {side: [] for side in SIDES}
    for side in base.interleaved(sizes.combined_repeats, *SIDES):
        # Each run on fresh processes and an empty Redis: no backlog from the other side's run.
        with serving(stack, daphnes=int(side), workers=int(side), SANDBOX_LATENCY_MS="0") as webs:
            runs[side].append(_load(ctx, [web + ACCEPT_PATH for web in webs], sizes.concurrency))
    sides = {
        side: _side(runs[side], accepted_per_s="rps", settled_per_s="settled_per_s", p99_ms="p99_ms") for side in SIDES
    }
    one, two = sides["1"], sides["2"]
    return {
        "concurrency": sizes.concurrency,
        "sides": sides,
        "accepted_ratio": ratio_of(two["accepted_per_s"], one["accepted_per_s"]),
        "settled_ratio": ratio_of(two["settled_per_s"], one["settled_per_s"]),
    }


# --- the scenario -----------------------------------------------------------------------------------------
def scenario_scale(ctx: Context) -> dict:
    sizes = SIZES[ctx.budget.name]
    ctx.log("scale-out: 1 vs 2 daphne and worker processes on one Redis and one database (gateway latency 0)")
    accept = _accept_side_by_side(ctx, sizes)
    settle = _settle_side_by_side(ctx, sizes)
    combined = _combined_side_by_side(ctx, sizes)
    figure = accept["ratio"]
    # Met only if every part rose: (c) can fall on a machine whose cores the 1 + 1 side already fills.
    every_part_rose = min(accept["ratio"], settle["ratio"], combined["accepted_ratio"], combined["settled_ratio"]) > 1
    return {
        "database": ctx.stack.database_kind,
        "cores": os.cpu_count(),
        "accept": accept,
        "settle": settle,
        "combined": combined,
        "figure": figure,
        "target": TARGET,
        "met": every_part_rose,
    }


# --- the report -------------------------------------------------------------------------------------------
def summary_rows(result: dict) -> list[str]:
    a, b, c = result["accept"], result["settle"], result["combined"]
    a1, a2 = a["sides"]["1"], a["sides"]["2"]
    b1, b2 = b["sides"]["1"], b["sides"]["2"]
    c1, c2 = c["sides"]["1"], c["sides"]["2"]
    return [
        f"| scale | accept, {a['concurrency']} clients, no worker: 2 daphne {fmt(a2['rps'])} req/s vs 1 daphne "
        f"{fmt(a1['rps'])} req/s | **{a['ratio']:.2f}×** | {TARGET} | {yes(a['ratio'] > 1)} |",
        f"| scale | {b['jobs']:,} queued payments: 2 worker processes {fmt(b2['per_second'])} settled/s vs 1 "
        f"{fmt(b1['per_second'])} settled/s | **{b['ratio']:.2f}×** | {TARGET} | {yes(b['ratio'] > 1)} |",
        f"| scale | whole system, {c['concurrency']} clients: 2 daphne + 2 workers {fmt(c2['accepted_per_s'])} "
        f"accepted/s and {fmt(c2['settled_per_s'])} settled/s vs 1 + 1 {fmt(c1['accepted_per_s'])} and "
        f"{fmt(c1['settled_per_s'])} | **{c['accepted_ratio']:.2f}×** accepted, **{c['settled_ratio']:.2f}×** "
        f"settled | {TARGET} | {yes(c['accepted_ratio'] > 1 and c['settled_ratio'] > 1)} |",
    ]


def _cpu_cells(cpu: dict) -> list[str]:
    return [fmt(cpu["machine_cores_busy"], 2), pct(cpu["client"]), pct(cpu["servers"])]


def _per_process(run: dict) -> str:
    return ", ".join(f"{name} {pct(share)}" for name, share in run["cpu"]["processes"].items())


def details(result: dict) -> list[str]:
    a, b, c = result["accept"], result["settle"], result["combined"]
    cores = result.get("cores") or "?"
    out = [
        "### Scale-out · one vs two daphne and worker processes on one Redis and one database",
        "",
        f"Database: {result['database']}. Gateway latency 0, so every process is CPU-bound and the question is "
        f"whether a second process finds CPU to use. This machine has {cores} cores, shared by the servers, "
        "Redis, the database and the load client; the CPU columns say where it went over each measured window "
        "(cores busy on the whole machine; the load client's and all server processes' CPU as a share of one "
        "core, 100 % = one core all the time).",
        "",
        f"**(a) Accept throughput.** `POST /api/v1/payments` from {a['concurrency']} clients, no worker. Two daphne "
        "processes run throughout; for the 2-process runs the load client deals its connections round-robin to "
        "the two ports (no load balancer involved), for the 1-process runs all go to the first. Summary: median "
        "of the runs per side.",
        "",
    ]
    rows = [
        [side, *(fmt(s[key]) for key in ("rps", "p50_ms", "p99_ms")), s["errors"], *_cpu_cells(s["cpu"])]
        for side, s in a["sides"].items()
    ]
    out += table(f"daphne processes | req/s | p50 ms | p99 ms | errors | {CPU_COLUMNS}", rows, left=0)
    out += ["", "Runs, in the order they ran:", ""]
    for side in SIDES:
        for number, run in enumerate(a["sides"][side]["runs"], 1):
            per_port = " + ".join(str(n) for n in run["ok_by_url"].values())
            out.append(
                f"- {side} daphne #{number}: {fmt(run['rps'])} req/s (answers per port in the window: {per_port}); "
                f"{_per_process(run)}"
            )
    out += [
        "",
        f"**(b) Settled per second.** {b['jobs']:,} pending payments (each with its own card, recorded while no "
        "worker runs) drained by burst worker processes; the rate is the job count over the first job's start to "
        "the last job's end (RQ's stamps), so process start-up is not counted. CPU over the same span.",
        "",
    ]
    rows = [
        [side, s.get("threads_per_process", "—"), fmt(s["per_second"]), fmt(s["span_s"], 2)]
        + [fmt(s["cpu"]["machine_cores_busy"], 2), pct(s["cpu"]["processes"].get("workers"))]
        for side, s in b["sides"].items()
    ]
    out += table("worker processes | threads each | settled/s | span s | cores busy | workers' CPU", rows, left=0)
    out += [
        "",
        f"**(c) The whole system.** The accept load ({c['concurrency']} clients) against 1 daphne + 1 worker "
        "process, then against 2 daphne + 2 worker processes, the workers settling what is accepted while it is "
        "accepted. Settled/s counts payments that reached an outcome inside the load's measured window. Each run "
        "starts its processes afresh with an empty queue.",
        "",
    ]
    rows = [
        [f"{side} daphne + {side} worker{'s' if side != '1' else ''}"]
        + [*(fmt(s[key]) for key in ("accepted_per_s", "settled_per_s", "p99_ms")), s["errors"], *_cpu_cells(s["cpu"])]
        for side, s in c["sides"].items()
    ]
    out += table(f"processes | accepted/s | settled/s | p99 ms | errors | {CPU_COLUMNS}", rows)
    out += ["", "Per process, per run: " + "; ".join(
        f"{side}+{side} #{number}: {_per_process(run)}"
        for side in SIDES
        for number, run in enumerate(c["sides"][side]["runs"], 1)
    ), ""]  # fmt: skip
    out += [
        "**How to read it.** A ratio above 1 means the second process found work and CPU of its own: nothing in "
        "the design serialises daphne processes (they share only Redis and the database) or worker processes "
        "(each takes its own jobs from the queue). How far above 1 it can get here is bounded by the machine: "
        f"{cores} cores for the servers, the load client, the database and Redis together. When the cores-busy "
        "column is close to the core count on the 2-process side, the machine, not the software, is the limit, "
        "and only more cores (more machines) show how far the ratio goes. In (c) daphne and the workers take CPU "
        "from each other, so one of the two rates can rise at the other's expense. See docs/scaling.md for "
        "what scales beyond one machine.",
        "",
    ]
    return out
