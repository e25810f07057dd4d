"""Scenarios 5 and 6: the shopper's whole wait, over the WebSocket the 202 names.

5 · end to end, submit → outcome frame at a fixed arrival rate (an open loop), against its floor: the same
    sequence with no work in it (bench/views.py FloorView, bench/jobs.py floor_job, bench/consumers.py).
6 · N sockets held open on one daphne, each waiting for its own pending payment: daphne's memory per socket,
    then every outcome delivered once the workers start.

Both run their sockets from a client process of their own (bench/ws_load.py); _details_5 and _details_6 write
how each is measured, as the report gives it. `python -m bench.run --scenarios 5,6` runs them alone.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import time
from dataclasses import asdict, dataclass

from bench.load import summarize_latencies
from bench.record import fmt, pct, proc_field, ratio_text, table, yes
from bench.scenarios import (
    ACCEPT_PATH,
    RUN_WORKERS,
    Context,
    interleaved,
    ratio_of,
    record_pending_payments,
    reset_redis,
    run_client,
    serving,
)
from bench.stack import BASE_DIR, PYTHON, Stack, cpu_seconds, cpu_shares, process_rss_mib
from bench.ws_load import WAIT_PAGE_HEARTBEAT, E2ESpec, HoldSpec, ws_base

FLOOR_PATH = "/api/v1/bench/floor"
GATEWAY_AT_ONCE = {"SANDBOX_LATENCY_MS": "0", "SANDBOX_LATENCY_JITTER_MS": "0"}
S5_TARGET = 3.0  # p99 ≤ 3× the floor's
S5_WARM_UP_RATE = 50  # arrivals/s of the unrecorded warm-up (at least the measured rate)
S5_WARM_UP_EXTRA = 20  # warm-up arrivals beyond one per worker thread
S6_TARGET_N = 5_000


@dataclass(frozen=True, kw_only=True)
class E2EParams:
    s5_rate: float  # offered payments per second (open loop)
    s5_warmup: float  # seconds of arrivals before each measured window
    s5_duration: float  # seconds of measured arrivals per run
    s5_repeats: int  # runs per side, interleaved A B B A
    s6_n: int  # sockets held open
    s6_connect_rate: float  # connects started per second
    s6_connect_concurrency: int = 50  # handshakes in flight
    s6_settle_timeout: float  # bound on the wait for every outcome after the workers start
    # The wait page's resume every 10 s, off here: it would hide a dropped push (the socket asks again) and
    # make daphne read the database N/10 times a second (measured: see docs/benchmarks.md, scenario 6).
    s6_heartbeat: float = 0.0


PARAMS = {
    "quick": E2EParams(
        s5_rate=5,
        s5_warmup=1.0,
        s5_duration=3.0,
        s5_repeats=1,
        s6_n=200,
        s6_connect_rate=200,
        s6_settle_timeout=60,
    ),
    "default": E2EParams(
        s5_rate=20,
        s5_warmup=2.0,
        s5_duration=8.0,
        s5_repeats=2,
        s6_n=S6_TARGET_N,
        s6_connect_rate=500,
        s6_settle_timeout=300,
    ),
}


def params_for(ctx: Context) -> E2EParams:
    return PARAMS["quick" if ctx.budget.name == "quick" else "default"]


# --- 5: submit → outcome frame against the floor ---------------------------------------------------------------
def scenario_5(ctx: Context) -> dict:
    stack, params = ctx.stack, params_for(ctx)
    ctx.log(
        f"scenario 5: submit → outcome frame at {params.s5_rate:g} payments/s vs the floor "
        f"(no-op view + no-op job + one push), {RUN_WORKERS} workers, gateway 0 ms"
    )
    runs: dict[str, list[dict]] = {"floor": [], "product": []}
    with serving(stack, workers=RUN_WORKERS, **GATEWAY_AT_ONCE):
        warm_up = _warm_up_e2e(ctx, params)
        for side in interleaved(params.s5_repeats, "floor", "product"):
            runs[side].append(_run_e2e(ctx, FLOOR_PATH if side == "floor" else ACCEPT_PATH, params))
    floor, product = _pooled(runs["floor"]), _pooled(runs["product"])
    ratio = ratio_of(product["p99_ms"], floor["p99_ms"])
    return {
        "scenario": 5,
        "rate": params.s5_rate,
        "workers": RUN_WORKERS,
        "floor": floor,
        "product": product,
        "p50_ratio": ratio_of(product["p50_ms"], floor["p50_ms"]),
        "runs": runs,
        "warm_up": warm_up,
        "figure": ratio,
        "target": S5_TARGET,
        "met": ratio <= S5_TARGET,
    }


def _warm_up_e2e(ctx: Context, params: E2EParams) -> dict:
    """Both sides once, unrecorded, with a job for every worker thread and some: RQ hands jobs to the
    longest-waiting worker, so jobs go round all the threads, and each thread's first job (its first Redis and
    database connections) is slower. Whichever side ran first would otherwise carry that in its p99."""
    threads = sum(getattr(worker, "threads", 1) for worker in ctx.stack.workers)
    rate = max(params.s5_rate, S5_WARM_UP_RATE)
    arrivals = threads + S5_WARM_UP_EXTRA
    ctx.log(f"    warm-up: {arrivals} arrivals on each side at {rate:g}/s ({threads} worker threads), not counted")
    return {
        side: _summary_only(_run_e2e(ctx, path, params, rate=rate, warmup=0, duration=arrivals / rate))
        for side, path in (("floor", FLOOR_PATH), ("product", ACCEPT_PATH))
    }


def _summary_only(run: dict) -> dict:
    run.pop("latencies_ms")
    return run


def _run_e2e(ctx: Context, path: str, params: E2EParams, *, rate=None, warmup=None, duration=None) -> dict:
    """One open-loop run from the client process; adds daphne's and the workers' CPU over it."""
    stack = ctx.stack
    spec = E2ESpec(
        base_url=stack.web_url,
        path=path,
        rate=params.s5_rate if rate is None else rate,
        duration=params.s5_duration if duration is None else duration,
        warmup=params.s5_warmup if warmup is None else warmup,
        token=stack.token,
    )
    pids = stack.server_pids()
    cpu_before, began = cpu_seconds(pids), time.monotonic()
    result = run_client("bench.ws_load", "e2e", spec=spec, timeout=spec.warmup + spec.duration + spec.timeout + 60)
    result["server_cpu_share"] = cpu_shares(cpu_before, cpu_seconds(pids), time.monotonic() - began)
    total = result["total"]
    ctx.log(
        f"    {path} at {result['offered_rate']:g}/s (sent {result['sent_rate']}/s, settled "
        f"{result['settled_rate']}/s): p50 {total['p50_ms']} ms, p99 {total['p99_ms']} ms, errors "
        f"{result['errors']}, in flight ≤ {result['max_in_flight']}, outcome on connect "
        f"{result['outcome_on_first_frame']}/{result['settled']}, only after a resume "
        f"{result['outcome_after_resume']}, server CPU {result['server_cpu_share']}"
    )
    if result["settled"] == 0:
        raise RuntimeError(f"no shopper got an outcome from {path}: {result['error_samples']}")
    return result


def _pooled(runs: list[dict]) -> dict:
    """One side's latencies pooled over its runs (p99 of a few hundred waits, not a median of p99s); each
    run's raw latencies are dropped from the result once pooled."""
    latencies = [ms / 1000 for run in runs for ms in run.pop("latencies_ms")]
    return {
        **summarize_latencies(latencies, digits=2),
        "settled": sum(run["settled"] for run in runs),
        "errors": sum(run["errors"] for run in runs),
        "outcome_after_resume": sum(run["outcome_after_resume"] for run in runs),
        "sent_rate": min(run["sent_rate"] for run in runs),
        "settled_rate": min(run["settled_rate"] for run in runs),
        "max_in_flight": max(run["max_in_flight"] for run in runs),
    }


# --- 6: N waiting shoppers on one daphne -----------------------------------------------------------------------
def scenario_6(ctx: Context) -> dict:
    from payments.selectors import payment_status_payload

    stack, params = ctx.stack, params_for(ctx)
    n = params.s6_n
    ctx.log(f"scenario 6: {n:,} sockets held open on one daphne, each waiting for its own payment")
    reset_redis(stack)
    began = time.monotonic()
    payments = record_pending_payments(n + 1)  # one more: the warm-up socket's
    payment_ids = [str(payment.pk) for payment in payments]
    ws_paths = [payment_status_payload(payment)["links"]["websocket"] for payment in payments]  # as the 202 names
    recorded_s = time.monotonic() - began
    ctx.log(f"    recorded {n + 1:,} pending payments in {recorded_s:.1f} s")
    stack.start_web(**GATEWAY_AT_ONCE)
    client = None
    try:
        _warm_up_socket(stack.web_url, ws_paths.pop())  # daphne's first socket loads what every socket uses
        payment_ids.pop()
        before = _probe(stack)
        client, spec_path = _start_hold_client(stack, ws_paths, params)
        connect_cpu = cpu_seconds(stack.server_pids())
        connected = _read_event(client, timeout=n / params.s6_connect_rate + 120)
        with_all = _probe(stack)
        connect_share = cpu_shares(connect_cpu, cpu_seconds(stack.server_pids()), connected["connect_seconds"])
        ctx.log(
            f"    connected {connected['connected']:,}/{n:,} in {connected['connect_seconds']} s; daphne RSS "
            f"{before['daphne_rss_mib']:.1f} → {with_all['daphne_rss_mib']:.1f} MiB, fds {before['daphne_fds']} → "
            f"{with_all['daphne_fds']}; channel groups {with_all['channel_groups']:,} "
            f"({with_all['channel_groups_kib']:.0f} KiB in Redis)"
        )
        client.stdin.write("go\n")
        client.stdin.flush()
        stack.start_workers(RUN_WORKERS, **GATEWAY_AT_ONCE)
        stack.wait_workers_ready()  # every thread of every worker process
        workers_ready_at = time.monotonic()
        daphne = {"daphne": [stack.web.pid]}
        settle_cpu = cpu_seconds(daphne)
        done, backlog = _wait_done(stack, client, timeout=params.s6_settle_timeout + 60)
        settle_share = cpu_shares(settle_cpu, cpu_seconds(daphne), time.monotonic() - workers_ready_at)
        after = _probe(stack)
    finally:
        if client is not None and client.poll() is None:
            client.kill()
            client.wait()
        stack.stop_workers()
        stack.stop_web()
        reset_redis(stack)
    result = _hold_result(n, before, with_all, after, connected, done)
    result.update(
        recorded_s=round(recorded_s, 1),
        settle_s=round(done["last_outcome_at"] - workers_ready_at, 2),
        workers_startup_s=round(workers_ready_at - done["go_at"], 2),
        settled_in_database=_settled_count(payment_ids),
        lost_settled_in_database=_settled_count([_payment_id(path) for path in done["lost_paths"]]),
        channel_backlog_max=backlog,
        channel_capacity=_channel_capacity(),
        daphne_cpu_share={"connect": connect_share.get("daphne"), "settle": settle_share.get("daphne")},
        params=asdict(params),
    )
    result["settle_rate"] = round(ratio_of(result["received"], result["settle_s"]), 1)
    spec_path.unlink(missing_ok=True)
    ctx.log(
        f"    received {result['received']:,}/{n:,} outcomes (lost {result['lost']}) in {result['settle_s']} s "
        f"after the workers were ready; {result['kib_per_connection']:.1f} KiB per connection in daphne; channel "
        f"backlog ≤ {backlog}; lost with the payment settled {result['lost_settled_in_database']}"
    )
    return result


def _warm_up_socket(web_url: str, ws_path: str) -> None:
    from websockets.sync.client import connect

    with connect(ws_base(web_url) + ws_path, open_timeout=10) as socket:
        socket.recv(timeout=10)


def _probe(stack: Stack) -> dict:
    """daphne's memory, open files and threads; the channel layer's groups in Redis and their memory. The
    Redis server's own figures (memory, clients) are for the whole server, which other databases may share."""
    import redis

    pid = stack.web.pid
    client = redis.Redis.from_url(stack.env["REDIS_URL"])
    try:
        memory, clients = client.info("memory"), client.info("clients")
        groups = list(client.scan_iter(match="asgi:group:*", count=1000))
        with client.pipeline(transaction=False) as pipe:
            for key in groups:
                pipe.memory_usage(key)
            group_bytes = sum(size or 0 for size in pipe.execute())
    finally:
        client.close()
    return {
        "daphne_rss_mib": process_rss_mib(pid),
        "daphne_fds": len(os.listdir(f"/proc/{pid}/fd")),
        "daphne_threads": int(proc_field(f"/proc/{pid}/status", "Threads:", "0")),
        "channel_groups": len(groups),
        "channel_groups_kib": group_bytes / 1024,
        "redis_server_used_mib": memory["used_memory"] / 2**20,
        "redis_server_clients": clients["connected_clients"],
    }


def _start_hold_client(stack: Stack, ws_paths: list[str], params: E2EParams):
    spec = HoldSpec(
        base_url=stack.web_url,
        ws_paths=ws_paths,
        connect_concurrency=params.s6_connect_concurrency,
        connect_rate=params.s6_connect_rate,
        settle_timeout=params.s6_settle_timeout,
        heartbeat=params.s6_heartbeat,
    )
    spec_path = stack.log_dir / f"hold-spec-{time.time_ns()}.json"  # thousands of URLs: too long for argv
    spec_path.write_text(json.dumps(asdict(spec)))
    stderr = open(stack.log_dir / "ws-hold-client.log", "ab")  # noqa: SIM115 - the child holds it
    client = subprocess.Popen(  # noqa: S603 - our own argv
        [PYTHON, "-m", "bench.ws_load", "hold", "--spec-file", str(spec_path)],
        cwd=BASE_DIR,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )
    stderr.close()
    return client, spec_path


def _read_event(client: subprocess.Popen, *, timeout: float) -> dict:
    """The client's next JSON line; it prints one and then waits for us, so a whole line is there to read."""
    ready, _, _ = select.select([client.stdout], [], [], timeout)
    line = client.stdout.readline() if ready else ""
    if not line:
        raise RuntimeError(f"the WebSocket client said nothing within {timeout:.0f} s (exit {client.poll()})")
    return json.loads(line)


def _wait_done(stack: Stack, client: subprocess.Popen, *, timeout: float) -> tuple[dict, int]:
    """Wait for the client's last line; meanwhile sample the channel layer's backlog for daphne: messages
    pushed to its sockets that its receive loop has not taken yet (channels-redis drops pushes beyond the
    layer's capacity, so this is how close the run came to losing any). The backlog is one sorted set per
    daphne process, named after the process's channel prefix; it exists only while messages wait in it."""
    import redis

    connection = redis.Redis.from_url(stack.env["REDIS_URL"])
    deadline, backlog, keys, looked_at = time.monotonic() + timeout, 0, set(), 0.0
    try:
        while client.poll() is None and time.monotonic() < deadline:
            if not keys and time.monotonic() - looked_at > 1:  # a SCAN of the whole database: not every sample
                keys.update(connection.scan_iter(match="asgispecific.*", count=1000))
                looked_at = time.monotonic()
            backlog = max([backlog, *(connection.zcard(key) for key in keys)])
            time.sleep(0.1)
    finally:
        connection.close()
    return _read_event(client, timeout=5), backlog


def _payment_id(ws_path: str) -> str:
    return ws_path.split("?", 1)[0].rsplit("/", 1)[1]


def _channel_capacity() -> int:
    from django.conf import settings

    return settings.CHANNEL_LAYERS["default"]["CONFIG"].get("capacity", 100)


def _settled_count(payment_ids: list[str]) -> int:
    from payments.models import OUTCOME_STATUSES, Payment

    return sum(
        Payment.objects.filter(pk__in=payment_ids[start : start + 500], status__in=OUTCOME_STATUSES).count()
        for start in range(0, len(payment_ids), 500)
    )


def _hold_result(n: int, before: dict, with_all: dict, after: dict, connected: dict, done: dict) -> dict:
    rss_delta = with_all["daphne_rss_mib"] - before["daphne_rss_mib"]
    per = max(connected["connected"], 1)
    met = n >= S6_TARGET_N and done["connected"] == n and done["lost"] == 0
    return {
        "scenario": 6,
        "n": n,
        **{key: done[key] for key in ("connected", "received", "lost", "lost_reasons", "lost_samples")},
        **{key: done[key] for key in ("outcome_on_connect", "outcome_delay", "outcome_after_resume", "resumes_sent")},
        "connect_failures": connected["connect_failures"],
        "connect_s": connected["connect_seconds"],
        "connect_rate": connected["connect_rate"],
        "kib_per_connection": rss_delta * 1024 / per,
        "group_kib_per_connection": with_all["channel_groups_kib"] / per,
        "daphne_fds_besides_sockets": with_all["daphne_fds"] - connected["connected"],
        "daphne": {"before": before, "connected": with_all, "after_settle": after},
        "client_max_rss_mib": done["client_max_rss_mib"],
        "figure": float(done["lost"]),
        "target": f"N = {S6_TARGET_N:,} with none lost",
        "met": met,
    }


# --- the report's rows and sections ----------------------------------------------------------------------------
def summary_rows(result: dict) -> list[str]:
    """The results table's row for scenario 5 or 6 (which one: `result["scenario"]`)."""
    if result["scenario"] == 5:
        f, p = result["floor"], result["product"]
        return [
            f"| 5 | end to end, submit → outcome frame at {result['rate']:g} payments/s, gateway 0 ms: "
            f"p99 {fmt(p['p99_ms'])} ms vs floor {fmt(f['p99_ms'])} ms "
            f"(p50 {fmt(p['p50_ms'])} vs {fmt(f['p50_ms'])} ms) "
            f"| {ratio_text(result['figure'], S5_TARGET, '×')} floor | ≤ 3× | {yes(result['met'])} |"
        ]
    quick = "" if result["n"] >= S6_TARGET_N else f" (N below the target's {S6_TARGET_N:,})"
    return [
        f"| 6 | {result['n']:,} sockets on one daphne{quick}: {result['received']:,} received their outcome, "
        f"{fmt(result['kib_per_connection'])} KiB per connection, settled in {fmt(result['settle_s'])} s "
        f"| **{result['lost']:,} lost** | {result['target']} | {yes(result['met'])} |"
    ]


def details(result: dict) -> list[str]:
    """The report's section for scenario 5 or 6: what is measured, the raw figures, how to read them."""
    return _details_5(result) if result["scenario"] == 5 else _details_6(result)


def _details_5(s: dict) -> list[str]:
    out = [
        "### 5 · End to end: submit → outcome frame, against the floor",
        "",
        f"An open loop at {s['rate']:g} payments/s (arrivals at a fixed rate whatever the server does), "
        f"`make run`'s {s['workers']} workers and daphne up, gateway latency 0. Each shopper does what the wait "
        "page does: `POST /api/v1/payments` (token, Idempotency-Key), then opens the WebSocket its 202 names "
        "(`links.websocket`) and waits for the frame whose status is an outcome; the time is from just before "
        "the POST to that frame. The floor is the same sequence with no work in it: `POST /api/v1/bench/floor` "
        "(the ceiling view's auth, throttle and parsing) enqueues a no-op job on the same queue with the same "
        'options, which records "done" in Redis and sends one push through the product\'s push path; its '
        'bench-only socket joins the group, then checks "done" (as the product\'s consumer reads the database '
        "after joining). Floor and product runs alternate in one run; percentiles pool each side's runs. "
        "*Sent/s* is the rate the client kept, *settled/s* outcomes over the time from the first measured POST "
        "to the last outcome (it stays at the offered rate only if no queue grows); *outcome on connect* counts "
        "shoppers whose first frame was already the outcome (the job finished before the socket joined). Like "
        f"the wait page, each socket sends a `resume` every {WAIT_PAGE_HEARTBEAT:g} s; *after a resume* counts "
        "outcomes that came only then, i.e. whose push never arrived.",
        "",
    ]
    rows = [
        [f"{side} #{index}", fmt(run["sent_rate"]), fmt(run["settled_rate"])]
        + [fmt(run["total"][key]) for key in ("p50_ms", "p90_ms", "p99_ms", "max_ms")]
        + [fmt(run[part]["p50_ms"]) for part in ("post", "ws_open", "to_outcome")]
        + [f"{run['outcome_on_first_frame']}/{run['settled']}", run["outcome_after_resume"], run["errors"]]
        + [run["max_in_flight"], *(pct(run["server_cpu_share"].get(name)) for name in ("daphne", "workers"))]
        for side in ("floor", "product")
        for index, run in enumerate(s["runs"][side], 1)
    ]
    out += table(
        "run | sent/s | settled/s | p50 ms | p90 ms | p99 ms | max ms | POST p50 | socket open p50 | then outcome p50 "
        "| outcome on connect | after a resume | errors | in flight ≤ | daphne CPU | workers CPU",
        rows,
    )
    f, p = s["floor"], s["product"]
    out += [
        "",
        f"Pooled: product p50 {fmt(p['p50_ms'])} ms, p99 {fmt(p['p99_ms'])} ms over {p['settled']:,} payments; floor "
        f"p50 {fmt(f['p50_ms'])} ms, p99 {fmt(f['p99_ms'])} ms over {f['settled']:,}. p99 ratio "
        f"{s['figure']:.2f}, p50 ratio {s['p50_ratio']:.2f}.",
        "",
    ]
    if "warm_up" in s:
        warm = s["warm_up"]
        out += [
            f"Warm-up before the runs (not counted; {warm['product']['sent_total']} arrivals a side at "
            f"{warm['product']['offered_rate']:g}/s, so that every worker thread has had its first job): outcomes "
            f"only after a resume {warm['floor']['outcome_after_resume']} (floor), "
            f"{warm['product']['outcome_after_resume']} (product); errors {warm['floor']['errors']}, "
            f"{warm['product']['errors']}.",
            "",
        ]
    return out


def _details_6(s: dict) -> list[str]:
    d = s["daphne"]
    probes = [
        ("daphne RSS, MiB", "daphne_rss_mib", 1),
        ("daphne open files", "daphne_fds", 0),
        ("daphne threads", "daphne_threads", 0),
        ("channel-layer groups in Redis", "channel_groups", 0),
        ("their memory in Redis, KiB", "channel_groups_kib", 0),
        ("Redis used memory, MiB (whole server)", "redis_server_used_mib", 1),
        ("Redis clients (whole server)", "redis_server_clients", 0),
    ]
    out = [
        "### 6 · Waiting shoppers: sockets held open on one daphne",
        "",
        f"{s['n']:,} pending payments recorded while no worker runs, then one socket each (its 202's "
        "`links.websocket`) opened from a separate client process, paced at "
        f"{s['params']['s6_connect_rate']:g} connects/s with at most {s['params']['s6_connect_concurrency']} "
        "handshakes in flight (so daphne's accept backlog is not what is measured). A socket counts as connected "
        "once its first frame (the pending state the consumer reads after joining its group) has arrived. "
        "daphne's memory is read before (after one warm-up socket) and with every socket connected; memory per "
        "connection is the difference over the sockets. Then `make run`'s workers start and each socket waits "
        f"for its outcome frame (bounded by {s['params']['s6_settle_timeout']:g} s); a shopper leaves (closes) "
        "once they have it. "
        + (
            f"Like the wait page, each socket sends a `resume` every {s['params']['s6_heartbeat']:g} s, which makes "
            "the consumer read its payment again; *lost* is sockets that never got their outcome even so."
            if s["params"]["s6_heartbeat"]
            else "Unlike the wait page, the sockets send no `resume` heartbeat, so every outcome must come by push: "
            "*lost* is sockets without their outcome frame, split by whether the payment had settled (the push "
            "was lost) or not (the job did not finish)."
        )
        + " *Outcome delay* is from the outcome's write (its `updated_at`, stamped in the worker's transaction "
        "just before the commit, so a commit waiting on a lock counts too) to its frame at the client.",
        "",
    ]
    rows = [
        [label, *(fmt(d[at][key], digits) for at in ("before", "connected", "after_settle"))]
        for label, key, digits in probes
    ]
    out += table(" | before | all connected | after settling", rows)
    out += [
        "",
        "| figure | value |",
        "|---|---:|",
        f"| connected / received outcome / lost | {s['connected']:,} / {s['received']:,} / {s['lost']:,} |",
        f"| lost with the payment settled (push lost) / not settled (job unfinished) | "
        f"{s['lost_settled_in_database']:,} / {s['lost'] - s['lost_settled_in_database']:,} |",
        f"| outcome delay, write → frame: p50 / p99 / max | {fmt(s['outcome_delay']['p50_ms'], 0)} / "
        f"{fmt(s['outcome_delay']['p99_ms'], 0)} / {fmt(s['outcome_delay']['max_ms'], 0)} ms |",
        f"| memory per connection in daphne | {fmt(s['kib_per_connection'])} KiB |",
        f"| Redis memory per connection (its channel-layer group) | {fmt(s['group_kib_per_connection'], 2)} KiB |",
        f"| daphne's open files besides the sockets (Redis connections, the database, logs) "
        f"| {s['daphne_fds_besides_sockets']:,} |",
        f"| connecting all, s (achieved connects/s) | {fmt(s['connect_s'], 1)} ({fmt(s['connect_rate'])}) |",
        f"| settling all after the workers were ready, s (outcomes/s) | {fmt(s['settle_s'], 1)} "
        f"({fmt(s['settle_rate'])}) |",
        f"| payments with an outcome in the database | {s['settled_in_database']:,} |",
        f"| most pushes waiting for daphne's receive loop (channel capacity) | {s['channel_backlog_max']:,} "
        f"({s['channel_capacity']:,}) |",
        f"| daphne CPU while connecting / settling | {pct(s['daphne_cpu_share']['connect'])} / "
        f"{pct(s['daphne_cpu_share']['settle'])} |",
        f"| the client process's peak RSS | {fmt(s['client_max_rss_mib'])} MiB |",
        "",
    ]
    if s["lost"]:
        out += [f"Lost, by reason: {s['lost_reasons']}; e.g. {s['lost_samples']}.", ""]
    return out
