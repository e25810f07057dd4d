"""`make bench`: python -m bench.run [--quick] [--scenarios 1,2,3,4,5,6,7,scale]

Starts what the scenarios need on 127.0.0.1 (bench/stack.py), runs them (bench/scenarios.py, scenario_e2e.py,
scenario_scale.py), profiles the hot paths (bench/profiling.py) and writes the raw JSON under bench/results/
and the report with its chart (docs/benchmarks.md and docs/benchmarks.png; with --quick or --scenarios, next
to the JSON, so the committed report stays a full run). Every process it starts is stopped at the end, on
error and on Ctrl-C/SIGTERM too.

PostgreSQL is used when DATABASE_URL says so (in a database of its own, `checkout_bench`); SQLite otherwise.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.scenarios import DEFAULT, QUICK, Context
from bench.stack import BASE_DIR, DEFAULT_DATABASE_NAME, Stack

RESULTS_DIR = BASE_DIR / "bench" / "results"
# The seven scenarios and the scale-out run, in the order a run takes them.
ORDER = ("1", "2", "3", "4", "5", "6", "7", "scale")


def registry() -> dict:
    from bench import scenario_e2e, scenario_scale, scenarios

    return {
        "1": scenarios.scenario_1,
        "2": scenarios.scenario_2,
        "3": scenarios.scenario_3,
        "4": scenarios.scenario_4,
        "5": scenario_e2e.scenario_5,
        "6": scenario_e2e.scenario_6,
        "7": scenarios.scenario_7,
        "scale": scenario_scale.scenario_scale,
    }


DOC_PATH = BASE_DIR / "docs" / "benchmarks.md"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="CI smoke: tiny counts, every scenario, < 1 min")
    parser.add_argument("--scenarios", default=",".join(ORDER), help=f"which, e.g. 1,4 (default: {','.join(ORDER)})")
    parser.add_argument("--no-profile", action="store_true", help="skip the in-process profiles")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR, help="where the JSON and profiles go")
    parser.add_argument(
        "--doc", type=Path, default=None, help="the report (default: docs/benchmarks.md; --quick, --scenarios: results)"
    )
    parser.add_argument("--database-url", default=None, help="default: DATABASE_URL, else SQLite")
    parser.add_argument("--database-name", default=DEFAULT_DATABASE_NAME, help="the bench's own database name")
    parser.add_argument("--redis-url", default=None, help="a Redis database the bench may empty")
    args = parser.parse_args(argv)
    args.scenario_keys = [part.strip() for part in args.scenarios.split(",") if part.strip()]
    unknown = [key for key in args.scenario_keys if key not in ORDER]
    if unknown:
        parser.error(f"no scenario {unknown}; this harness has {', '.join(ORDER)}")
    return args


def _stop_on_sigterm(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    budget = QUICK if args.quick else DEFAULT
    began = time.monotonic()
    load_before = os.getloadavg()[0]
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    suffix = "-quick" if args.quick else ""
    results_dir = args.results_dir.resolve()
    results_dir.mkdir(parents=True, exist_ok=True)
    full = not args.quick and args.scenario_keys == list(ORDER)
    doc_path = (args.doc or (DOC_PATH if full else results_dir / f"{stamp}{suffix}.md")).resolve()
    command = shlex.join(["python", "-m", "bench.run", *(sys.argv[1:] if argv is None else argv)])

    def log(message: str) -> None:
        print(f"[{time.monotonic() - began:6.1f} s] {message}", flush=True)

    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    stack = Stack(
        log_dir=BASE_DIR / "var" / "bench" / "logs" / stamp,
        database_url=args.database_url,
        redis_url=args.redis_url,
        database_name=args.database_name,
    )
    try:
        log(f"bench ({budget.name}): setting up Redis and the database")
        stack.setup()
        # This process records payments and profiles in-process: Django on the bench's environment.
        stack.django_setup()
        stack.create_user_token()
        log(f"database: {stack.database_kind}; Redis: {stack.redis_kind}; logs: {stack.log_dir}")

        context = Context(stack=stack, budget=budget, log=log)
        results = {}
        scenarios = registry()
        for key in args.scenario_keys:
            started = time.monotonic()
            result = results[key] = scenarios[key](context)
            result["seconds"] = round(time.monotonic() - started, 1)
            figure, target, met = (result[name] for name in ("figure", "target", "met"))
            log(f"scenario {key}: {figure:.3g} (target {target}, met: {met}) in {result['seconds']} s")

        profile = None
        if not args.no_profile:
            from bench.profiling import profile_hot_paths, profile_server

            where = {"results_dir": results_dir, "stamp": stamp + suffix}
            server = profile_server(context, **where) if budget.server_profile else None
            profile = profile_hot_paths(token=stack.token, requests=budget.profile_requests, log=log, **where)
            profile["server"] = server
    except KeyboardInterrupt as stop:
        log(f"interrupted ({stop or 'Ctrl-C'}); stopping")
        return 130
    finally:
        stack.close()
        log("stopped every process the bench started")

    from bench import record, report

    run = report.build_run(
        stamp=stamp,
        command=command,
        budget=budget,
        stack=stack,
        results=results,
        profile=profile,
        seconds=time.monotonic() - began,
        load_before=load_before,
    )
    json_path = record.write_json(run, results_dir / f"{stamp}{suffix}.json")
    report.write_markdown(run, doc_path, json_path=json_path)
    log(f"wrote {json_path.relative_to(BASE_DIR) if json_path.is_relative_to(BASE_DIR) else json_path}")
    log(f"wrote {doc_path.relative_to(BASE_DIR) if doc_path.is_relative_to(BASE_DIR) else doc_path} and its chart")
    return 0


if __name__ == "__main__":
    sys.exit(main())
