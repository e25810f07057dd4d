"""`make chaos`: python -m tests.chaos [--ci] [--payments N] [--seed N]

1. Set up: a Valkey of its own, the database `checkout_chaos` dropped, created and migrated on the
   PostgreSQL of DATABASE_URL, two merchants (API tokens, `payments.refund_payment`) and a product; then
   daphne, the workers and the reconciler (stack.py).
2. Drive: print the fault schedule, then run the load (load.py) and the injectors (faults.py) together,
   supervising the processes the whole time.
3. Settle: wait until every payment and refund is final and every waiter has its outcome, at most the
   profile's settle window after the last fault and the last submission.
4. Count: Redis (before each restart and at the end), `manage.py payments_audit`, `pg_dump`; stop every
   process; search every log; count (counters.py); measure recovery (recovery.py); write the JSON and the
   report (report.py). Exit 1 if any counter is not zero.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import shlex
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from bench.load import percentile
from bench.record import machine, write_json
from bench.stack import BASE_DIR, PYTHON
from bench.ws_load import WAIT_PAGE_HEARTBEAT
from tests.chaos import counters, faults, plan, recovery, report, search
from tests.chaos.clients import ClientLog
from tests.chaos.load import Load
from tests.chaos.stack import ChaosStack, require_local_postgres

RESULTS_DIR = BASE_DIR / "bench" / "results"
DOC_PATH = BASE_DIR / "docs" / "reliability.md"
CHART_PATH = BASE_DIR / "docs" / "reliability.png"
DATABASE_NAME = "checkout_chaos"
MERCHANTS = ("merchant-a", "merchant-b")
PRODUCT_PRICE = 1999


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__.split("\n\n")[0])
    parser.add_argument("--ci", action="store_true", help="CI-sized: a few hundred payments, every fault once")
    parser.add_argument("--payments", type=int, default=None, help="override the profile's payment count")
    parser.add_argument("--seed", type=int, default=None, help="replay a run's random choices (default: random)")
    parser.add_argument(
        "--only", default="", help="investigate: fire only these faults of the schedule (e.g. db-stall,redis-pause)"
    )
    parser.add_argument(
        "--stack-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="investigate: more environment for every process of the stack (e.g. PYTHONPATH=dir of a diagnostic)",
    )
    parser.add_argument("--database-url", default=None, help="PostgreSQL server (default: DATABASE_URL)")
    parser.add_argument("--database-name", default=DATABASE_NAME, help="the run's own database (dropped, created)")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--doc", type=Path, default=None, help="default: docs/reliability.md; --ci: next to the JSON")
    return parser.parse_args(argv)


class Output:
    """The harness's own log: the terminal and var/chaos/<stamp>/harness.log (searched for card data too)."""

    def __init__(self, path: Path):
        self.began = time.monotonic()
        path.parent.mkdir(parents=True, exist_ok=True)
        self.file = open(path, "a")  # noqa: SIM115 - open for the whole run
        self.path = path

    def __call__(self, message: str) -> None:
        line = f"[{time.monotonic() - self.began:7.1f} s] {message}"
        print(line, flush=True)
        self.file.write(line + "\n")
        self.file.flush()


def _stop_on_sigterm(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    profile = plan.CI if args.ci else plan.FULL
    if args.payments:
        profile = dataclasses.replace(profile, payments=args.payments)
    if args.only:
        kinds = set(args.only.split(","))
        unknown = kinds - set(plan.FAULT_KINDS)
        if unknown:
            raise SystemExit(f"no such fault {sorted(unknown)}; the faults are {', '.join(plan.FAULT_KINDS)}")
        profile = dataclasses.replace(profile, faults=tuple(f for f in profile.faults if f.kind in kinds))
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "big")
    database_url = args.database_url or os.environ.get("DATABASE_URL", "")
    require_local_postgres(database_url)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    suffix = "-chaos-ci" if args.ci else "-chaos"
    run_dir = BASE_DIR / "var" / "chaos" / stamp
    out = Output(run_dir / "logs" / "harness.log")
    command = shlex.join(["python", "-m", "tests.chaos", *(sys.argv[1:] if argv is None else argv)])
    faults_file = run_dir / "sandbox-faults"
    stack = ChaosStack(
        log_dir=run_dir / "logs",
        database_url=database_url,
        database_name=args.database_name,
        extra_env={
            **plan.stack_env(profile, faults_file=str(faults_file)),
            **dict(item.split("=", 1) for item in args.stack_env),
        },
    )
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    load_before, started_wall, began = os.getloadavg()[0], time.time(), time.monotonic()
    redis_snapshots: list[bytes] = []
    try:
        out(f"chaos ({profile.name}, seed {seed}): setting up Valkey and the database {args.database_name}")
        stack.setup()
        merchants, product_id = _prepare(stack)
        out(f"database: {stack.database_kind}; Redis: {stack.redis_kind}; logs: {stack.log_dir}")
        stack.start_all(workers=profile.worker_processes, threads=profile.worker_threads)
        log = ClientLog()
        load = Load(
            profile=profile,
            base_url=stack.web_url,
            merchants=merchants,
            product_id=product_id,
            product_price=PRODUCT_PRICE,
            log=log,
            seed=seed,
            run_id=stamp,
            info=out,
        )
        drive = asyncio.run(_drive(stack, profile, load, faults_file, out, redis_snapshots, seed))
        out("counting: Redis, payments_audit, pg_dump")
        redis_snapshots.append(search.redis_dump(stack.redis_url))
        audit = _audit(stack)
        dump = search.pg_dump(_database(stack), run_dir / "pg_dump.sql")
    except KeyboardInterrupt as stop:
        out(f"interrupted ({stop or 'Ctrl-C'}); stopping")
        return 130
    finally:
        stack.close()
        out("stopped every process the harness started")

    (run_dir / "client-log.json").write_text(json.dumps(log.as_dict(), default=str))
    cards = search.CardSearch(numbers=dict(plan.CARD_NUMBER), cvcs=load.cvcs[3] + load.cvcs[4])
    cards.search("pg_dump", dump)
    for number, snapshot in enumerate(redis_snapshots, 1):
        cards.search(f"Redis snapshot {number}", snapshot)
    for path in [*stack.log_files(), run_dir / "client-log.json"]:
        cards.search("logs" if path.parent == stack.log_dir else "client log", path.read_bytes())
    hit_samples = [f"{where}: {', '.join(sorted(set(found)))}" for where, found in cards.hits.items()]

    counts = counters.summary(
        counters.count_all(
            log,
            audit=audit,
            card_hits=cards.total,
            card_hit_samples=hit_samples,
            unsettled_at_deadline=drive["unsettled_at_deadline"],
        )
    )
    run = {
        "stamp": stamp,
        "command": command,
        "seed": seed,
        "started_at": started_wall,
        "seconds": round(time.monotonic() - began, 1),
        "load_before": load_before,
        "machine": machine(report.PACKAGES),
        "database": stack.database_kind,
        "redis": stack.redis_kind,
        "profile": {
            **dataclasses.asdict(profile),
            "faults": [dataclasses.asdict(f) for f in profile.faults],
            "settle_window": profile.settle_window,
        },
        "faults": drive["faults"],
        "counters": counts,
        "recovery": _recovery(drive, profile),
        "stats": _stats(log, drive, stack),
        "card_search": {
            "cvcs": len(cards.cvcs),
            "searched": cards.searched,
            "hits_total": cards.total,
            "hits": {where: dict(Counter(found)) for where, found in cards.hits.items()},
        },
        "audit": {"ok": audit.get("ok"), "by_status": audit.get("by_status"), "payments": audit.get("payments")},
    }
    results_dir = args.results_dir.resolve()
    results_dir.mkdir(parents=True, exist_ok=True)
    json_path = write_json(run, results_dir / f"{stamp}{suffix}.json")
    doc = (args.doc or (results_dir / f"{stamp}{suffix}.md" if args.ci else DOC_PATH)).resolve()
    chart = None
    if not args.ci and doc == DOC_PATH and report.write_chart(run, CHART_PATH):
        chart = CHART_PATH.name
    report.write_markdown(run, doc, json_path=_relative(json_path), chart=chart)
    failing = {name: c["value"] for name, c in counts.items() if c["value"]}
    out(f"wrote {_relative(json_path)} and {_relative(doc)}")
    for name, c in counts.items():
        out(f"  {name:20} {c['value']:>6}  {c['what']}")
        for sample in c["samples"][:5]:
            out(f"      {sample}")
    for item in run["recovery"]["faults"]:
        how = f"{item['seconds']:.1f} s" if item["recovered"] else f"> {item['seconds']:.1f} s"
        out(f"  recovery {item['kind']:18} at {item['started_at']:6.1f} s: {how}")
    out(
        f"done in {time.monotonic() - began:.0f} s: "
        + ("every counter is zero" if not failing else f"NOT ZERO {failing}")
    )
    return 1 if failing else 0


def _relative(path: Path) -> Path:
    return path.relative_to(BASE_DIR) if path.is_relative_to(BASE_DIR) else path


def _database(stack: ChaosStack) -> dict:
    parts = urlsplit(stack.env["DATABASE_URL"])
    return {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 5432,
        "user": parts.username or "postgres",
        "password": parts.password or "",
        "dbname": parts.path.lstrip("/"),
    }


def _prepare(stack: ChaosStack) -> tuple[list[tuple[str, str]], int]:
    """Django in this process, on the run's database: the merchants (tokens, refund permission) and the
    product the shoppers buy. The harness's own connections carry no pool and are closed before the load."""
    import logging

    stack.django_setup(DATABASE_POOL_MAX_SIZE="0")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # the clients' every request is counted, not logged
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission
    from django.db import connections
    from rest_framework.authtoken.models import Token

    from checkout.models import Product

    refund = Permission.objects.get(codename="refund_payment", content_type__app_label="payments")
    merchants = []
    for name in MERCHANTS:
        user, _ = get_user_model().objects.get_or_create(username=name)
        user.user_permissions.add(refund)
        merchants.append((name, Token.objects.get_or_create(user=user)[0].key))
    product = Product.objects.create(
        slug="chaos-beans", name="Chaos beans", price=PRODUCT_PRICE, currency="USD", stock=10**9
    )
    connections.close_all()
    return merchants, product.pk


async def _drive(stack, profile, load: Load, faults_file: Path, out, redis_snapshots: list, seed: int) -> dict:
    import random

    await stack.wait_ready()
    out(f"stack up: daphne {stack.web_url}, {profile.worker_processes} workers × {profile.worker_threads} threads")
    out(f"FAULT SCHEDULE ({len(profile.faults)} faults; offsets from the load's start):")
    for fault in profile.faults:
        out(f"  t+{fault.at:5.0f} s  {fault.kind:17} {fault.target}")
    out(
        f"load: {profile.payments} payments at {profile.rate:g}/s, {profile.concurrency} clients, "
        f"{profile.api_share:.0%} API / {1 - profile.api_share:.0%} checkout form"
    )

    async def snapshot():
        redis_snapshots.append(await asyncio.to_thread(search.redis_dump, stack.redis_url))

    injector = faults.Injector(
        stack=stack,
        faults=profile.faults,
        faults_file=faults_file,
        database=_database(stack),
        rng=random.Random(f"faults-{seed}"),  # noqa: S311 - chaos, not crypto
        log=out,
        before_redis_restart=snapshot,
        open_sockets=lambda: load.log.sockets,
    )
    done = asyncio.Event()

    async def supervise():
        while not done.is_set():
            for note in stack.supervise():
                out(note)
            await asyncio.sleep(0.2)

    async def progress(started):
        while not done.is_set():
            await asyncio.sleep(10)
            subs = load.log.submissions
            out(
                f"progress: {len(subs)} submitted, {sum(s.answer == '202' for s in subs)} accepted, "
                f"{load.log.in_flight} requests in flight, {load.log.sockets} sockets open"
            )

    started_wall, started = time.time(), time.monotonic()
    tasks = [asyncio.create_task(supervise()), asyncio.create_task(progress(started))]
    try:
        load_task = asyncio.create_task(load.run(started))
        fault_records = await injector.run(started)
        await load_task
        out(f"load done at t+{load.finished_at - started:.0f} s; settling")
        last = max(load.finished_at, started + max(r.ended_at for r in fault_records))
        settle_deadline = last + profile.settle_window
        load.stop_at = settle_deadline + WAIT_PAGE_HEARTBEAT + 2
        unsettled_at_deadline = await _settle(stack, load, settle_deadline, out)
        settled_at = time.monotonic()
        await load.wait_background()
        await load.aclose()
    finally:
        done.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return {
        "started_wall": started_wall,
        "load_seconds": load.finished_at - started,
        "settle_seconds": settled_at - (load.finished_at),
        "faults": [record.as_dict() for record in fault_records],
        "unsettled_at_deadline": unsettled_at_deadline,
    }


async def _settle(stack, load: Load, deadline: float, out) -> list[str]:
    """Until everything is final and every waiter and refund is done, or the window closes; returns what was
    still unsettled when the window closed (nothing, if everything settled in time)."""
    import psycopg

    database = _database(stack)
    query = (
        "SELECT 'payment ' || id || ' ' || status FROM payments_payment WHERE status IN ('pending', 'processing', "
        "'unknown') UNION ALL SELECT 'refund ' || id || ' ' || status FROM payments_refund "
        "WHERE status IN ('pending', 'processing', 'unknown')"
    )
    async with await psycopg.AsyncConnection.connect(
        **database, autocommit=True, application_name=faults.HARNESS_APPLICATION_NAME
    ) as conn:
        while True:
            unsettled = [row[0] for row in await (await conn.execute(query)).fetchall()]
            now = time.monotonic()
            if now >= deadline:
                if unsettled:
                    out(f"settle window closed with {len(unsettled)} unsettled: {unsettled[:5]}")
                return unsettled
            if not unsettled and not load.background:
                return []
            await asyncio.sleep(1)


def _audit(stack: ChaosStack) -> dict:
    done = subprocess.run(  # noqa: S603 - our own argv
        [PYTHON, "manage.py", "payments_audit"],
        env=stack.env,
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    try:
        return json.loads(done.stdout)
    except ValueError:
        return {"ok": False, "error": (done.stdout + done.stderr)[-2000:]}


def _first_outcomes() -> dict:
    """When each payment reached its first outcome (succeeded, failed, canceled), by its events."""
    from django.db.models import Min

    from payments.models import PaymentEvent

    outcomes = PaymentEvent.objects.filter(to_status__in=("succeeded", "failed", "canceled"))
    return dict(outcomes.values("payment_id").annotate(at=Min("created_at")).values_list("payment_id", "at"))


def _recovery(drive: dict, profile: plan.Profile) -> dict:
    zero = drive["started_wall"]
    offsets = [at.timestamp() - zero for at in _first_outcomes().values()]
    window = profile.recovery_window
    series = recovery.rate_series(offsets, end=drive["load_seconds"] + 5, window=window)
    records = drive["faults"]
    full = recovery.full_rate(series, first_fault=records[0]["started_at"], window=window)
    results = []
    for index, record in enumerate(records):
        limit = records[index + 1]["started_at"] if index + 1 < len(records) else drive["load_seconds"]
        measured = recovery.recovery(
            series,
            started=record["started_at"],
            ended=record["ended_at"],
            limit=limit,
            baseline=full,
            window=window,
        )
        results.append(
            {
                "kind": record["kind"],
                "started_at": record["started_at"],
                "held": record["ended_at"] - record["started_at"],
                **measured,
            }
        )
    return {
        "window": window,
        "full_rate": full,
        "faults": results,
        "series": [(round(t, 1), round(r, 3)) for t, r in series],
    }


def _stats(log: ClientLog, drive: dict, stack: ChaosStack) -> dict:
    from django.db.models import Count

    from payments.models import Payment, PaymentEvent

    subs = log.submissions
    accepted_ids = {s.payment_id for s in subs if s.payment_id}
    final = Counter(dict(Payment.objects.values_list("status").annotate(n=Count("id")).order_by()))
    firsts = _first_outcomes()
    created = dict(Payment.objects.values_list("id", "created_at"))
    settle_ms = sorted((firsts[pid] - created[pid]).total_seconds() * 1000 for pid in firsts if pid in created)
    moves = Counter(
        f"{from_status} → {to_status}"
        for from_status, to_status in PaymentEvent.objects.filter(actor="reconciler").values_list(
            "from_status", "to_status"
        )
    )
    retry_reasons = Counter()
    for record in [*subs, *log.refunds]:
        retry_reasons.update(record.retry_reasons)
    exits = Counter((e.name.split("-")[0], e.planned) for e in stack.exits)
    names = sorted({name for name, _ in exits})
    waiters_via = Counter(w.via or f"never ({w.error})" for w in log.waiters)
    return {
        "submitted": len(subs),
        "by_flow": ", ".join(f"{k}: {v}" for k, v in sorted(Counter(s.flow for s in subs).items())),
        "accepted": len(accepted_ids),
        "load_seconds": drive["load_seconds"],
        "settle_seconds": drive["settle_seconds"],
        "max_in_flight": log.max_in_flight,
        "max_sockets": log.max_sockets,
        "responses": dict(sorted(log.responses.items())),
        "retry_reasons": dict(retry_reasons.most_common()),
        "replayed": sum(1 for s in subs if s.replayed),
        "non_202": dict(Counter(s.answer for s in subs if s.answer != "202")),
        "refund_requests": len(log.refunds),
        "refunded_payments": len({r.payment_id for r in log.refunds}),
        "refunds": dict(sorted(Counter(f"{r.plan} | {r.answer}" for r in log.refunds).items())),
        "waiters": len(log.waiters),
        "waiters_via": dict(waiters_via.most_common()),
        "ws_reconnects": sum(max(0, w.connections - 1) for w in log.waiters),
        "ws_reconnected_waiters": sum(1 for w in log.waiters if w.connections > 1),
        "ws_resumes": sum(w.resumes for w in log.waiters),
        "ws_connect_failures": sum(w.connect_failures for w in log.waiters),
        "final_status": dict(final.most_common()),
        "settle_ms": {
            "p50": percentile(settle_ms, 50),
            "p99": percentile(settle_ms, 99),
            "max": settle_ms[-1] if settle_ms else float("nan"),
            "median": statistics.median(settle_ms) if settle_ms else float("nan"),
        },
        "reconciler_moves": dict(moves.most_common()),
        "exits": [[name, exits[(name, True)] + exits[(name, False)], exits[(name, True)]] for name in names],
    }
