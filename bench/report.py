"""The run's record: raw JSON (bench/results/<UTC stamp>.json), the chart, and the Markdown report.

The report is generated whole from the JSON, except two parts people write: bench/choices.md, the record of
the experiments that settled the design choices, and bench/findings.md, the reading of the profile, included
under "What the profile shows" (update it when the code it talks about changes).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path

from bench import scenario_e2e, scenario_scale
from bench.record import fmt, machine, pct, ratio_text, table, when, yes
from bench.stack import BASE_DIR

FINDINGS_PATH = Path(__file__).with_name("findings.md")
# The record of the one-off experiments that settled the design choices (their code is gone; see the file).
CHOICES_PATH = Path(__file__).with_name("choices.md")
PACKAGES = ("django", "djangorestframework", "daphne", "channels", "channels-redis", "rq", "django-rq", "httpx")

RATE = (("per_second", 1), ("span_s", 2))  # a drain's rate and the span it is over, as the tables show them
NOT_MEASURED = [
    ("5", "end-to-end: submit → terminal WebSocket frame, p50/p99, latency 0", "p99 ≤ 3× floor"),
    ("6", "5,000 WebSocket clients waiting on one daphne", "N = 5,000, none lost"),
    ("7", "settled/s under a 2,000 ms bank vs 0 ms, `make run`'s workers", "≥ 0.5"),
    ("scale", "scale-out: two daphne + two workers (docs/scaling.md)", "> 1 (rises)"),
]


# --- the record ---------------------------------------------------------------------------------------------
def build_run(*, stamp, command, budget, stack, results, profile, seconds, load_before=None) -> dict:
    return {
        "stamp": stamp,
        "load_before": load_before,
        "command": command,
        "budget": asdict(budget),
        "seconds": round(seconds, 1),
        "machine": machine(PACKAGES),
        "database": stack.database_kind,
        "redis": stack.redis_kind,
        "scenarios": {str(number): result for number, result in results.items()},
        "profile": profile,
    }


# --- the chart ----------------------------------------------------------------------------------------------
def write_chart(run: dict, path: Path) -> bool:
    """One panel per measured scenario, each figure next to its reference, values on the bars. False when
    there is nothing to draw."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenarios = run["scenarios"]
    panels = [number for number in ("1", "2", "3", "4", "5", "6", "7", "scale") if number in scenarios]
    if not panels:
        return False
    columns = min(2, len(panels))
    rows = math.ceil(len(panels) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(5.6 * columns, 3.9 * rows), squeeze=False)
    ours, reference = "#2b6cb0", "#a0aec0"
    for ax, number in zip(axes.flat, panels, strict=False):
        result = scenarios[number]
        if number == "1":
            table = result["rows"]
            labels = [f"{row['concurrency']} client{'s' if row['concurrency'] > 1 else ''}" for row in table]
            _pairs(ax, labels, [r["accept"]["rps"] for r in table], [r["ceiling"]["rps"] for r in table])
            ax.legend(["accept: POST /api/v1/payments", "ceiling: trivial DRF endpoint"], fontsize=7, loc="upper left")
            ax.set_ylabel("requests/s")
            ax.set_title(
                f"1 · accept path vs the stack's ceiling: worst {result['figure']:.2f} (target ≥ {result['target']:g})"
            )
        elif number == "2":
            values = [result["fast"]["summary"]["rps"], result["slow"]["summary"]["rps"]]
            _bars(ax, ["gateway 0 ms", "gateway 2,000 ms"], values, [reference, ours])
            ax.set_ylabel(f"accepted/s ({result['concurrency']} clients)")
            ax.set_title(f"2 · accept vs gateway latency: {result['figure']:.2f} (target ≥ 0.9)")
        elif number == "3":
            values = [result["accept"]["rps"], result["sync"]["rps"]]
            _bars(ax, ["async accept (202)", "sync, gateway inline (200)"], values, [ours, reference])
            ax.set_ylabel(f"requests/s ({result['concurrency']} clients)")
            ax.set_title(f"3 · async vs sync, gateway 2 s: {result['figure']:.1f}× (target ≥ 20×)")
        elif number == "5":
            product, floor = result["product"], result["floor"]
            _pairs(ax, ["p50", "p99"], [product["p50_ms"], product["p99_ms"]], [floor["p50_ms"], floor["p99_ms"]])
            ax.legend(["submit → outcome frame", "floor: no-op view + job + push"], fontsize=7, loc="upper left")
            ax.set_ylabel(f"ms ({result['rate']:g} payments/s)")
            ax.set_title(f"5 · end to end vs the floor: p99 {result['figure']:.2f}× (target ≤ 3×)")
        elif number == "6":
            _bars(ax, ["sockets open", "outcomes received"], [result["n"], result["received"]], [reference, ours])
            ax.set_ylabel(f"sockets on one daphne ({fmt(result['kib_per_connection'])} KiB each)")
            ax.set_title(f"6 · waiting shoppers: {result['lost']:,} lost of {result['n']:,} (target 0 of 5,000)")
        elif number == "scale":
            sides = result["accept"]["sides"]
            _bars(ax, ["1 daphne", "2 daphne"], [sides["1"]["rps"], sides["2"]["rps"]], [reference, ours])
            ax.set_ylabel(f"accepted/s ({result['accept']['concurrency']} clients)")
            ax.set_title(f"scale-out: {result['figure']:.2f}× with a second process (target > 1)")
        elif number == "7":
            values = [result["fast_per_second"], result["slow_per_second"]]
            _bars(ax, ["bank 0 ms", "bank 2,000 ms"], values, [reference, ours])
            ax.set_ylabel(f"settled/s ({result['processes']} processes × {result['threads_per_process']} threads)")
            ax.set_title(f"7 · workers under a slow bank: {result['figure']:.2f} (target ≥ {result['target']:g})")
        else:
            table = result["rows"]
            labels = [f"{row['workers']} worker{'s' if row['workers'] > 1 else ''}" for row in table]
            _pairs(ax, labels, [r["payments"]["per_second"] for r in table], [r["noop"]["per_second"] for r in table])
            ax.legend(["payments settled", "no-op jobs (the queue's ceiling)"], fontsize=7, loc="upper left")
            ax.set_ylabel("jobs/s")
            ax.set_title(
                f"4 · workers vs the queue's ceiling: worst {result['figure']:.2f} (target ≥ {result['target']:g})"
            )
        ax.title.set_fontsize(9)
        ax.tick_params(labelsize=8)
        ax.set_ylim(0, ax.get_ylim()[1] * 1.25)  # room for the legend and the values
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.suptitle(f"make bench ({run['budget']['name']}), {when(run['stamp'])}: ours in blue, reference in grey")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def _bars(ax, labels, values, colors) -> None:
    bars = ax.bar(labels, values, color=colors, width=0.5)
    ax.bar_label(bars, fmt="%.0f", fontsize=8)


def _pairs(ax, labels, ours_values, reference_values) -> None:
    positions = list(range(len(labels)))
    left = ax.bar([p - 0.2 for p in positions], ours_values, width=0.4, color="#2b6cb0")
    right = ax.bar([p + 0.2 for p in positions], reference_values, width=0.4, color="#a0aec0")
    ax.bar_label(left, fmt="%.0f", fontsize=8)
    ax.bar_label(right, fmt="%.0f", fontsize=8)
    ax.set_xticks(positions, labels)


# --- the report ---------------------------------------------------------------------------------------------
def summary_rows(run: dict) -> list[str]:
    scenarios = run["scenarios"]
    rows = []
    if "1" in scenarios:
        target = scenarios["1"]["target"]
        for row in scenarios["1"]["rows"]:
            a, c = row["accept"], row["ceiling"]
            rows.append(
                f"| 1 | accept path, {row['concurrency']} client{'s' if row['concurrency'] > 1 else ''}: "
                f"{fmt(a['rps'])} req/s (p50 {fmt(a['p50_ms'])} ms, p99 {fmt(a['p99_ms'])} ms) vs ceiling "
                f"{fmt(c['rps'])} req/s (p50 {fmt(c['p50_ms'])} ms, p99 {fmt(c['p99_ms'])} ms) "
                f"| {ratio_text(row['ratio'], target)} of ceiling | ≥ {target:g} | {yes(row['ratio'] >= target)} |"
            )
    if "2" in scenarios:
        s = scenarios["2"]
        rows.append(
            f"| 2 | accept throughput, {s['concurrency']} clients, {s['workers']} workers up: gateway 2,000 ms "
            f"{fmt(s['slow']['summary']['rps'])} req/s vs 0 ms {fmt(s['fast']['summary']['rps'])} req/s "
            f"| {ratio_text(s['figure'], 0.9)} | ≥ 0.9 | {yes(s['met'])} |"
        )
    if "3" in scenarios:
        s = scenarios["3"]
        rows.append(
            f"| 3 | gateway 2,000 ms, {s['concurrency']} clients: async accept {fmt(s['accept']['rps'])} req/s vs "
            f"synchronous inline endpoint {fmt(s['sync']['rps'])} req/s (p50 {fmt(s['sync']['p50_ms'], 0)} ms) "
            f"| {ratio_text(s['figure'], 20, '×')} | ≥ 20× | {yes(s['met'])} |"
        )
    if "4" in scenarios:
        for row in scenarios["4"]["rows"]:
            rows.append(
                f"| 4 | {row['workers']} worker process{'es' if row['workers'] > 1 else ''} "
                f"× {row['payments'].get('threads_per_process', 1)} threads: "
                f"{fmt(row['payments']['per_second'])} payments settled/s vs {fmt(row['noop']['per_second'])} "
                f"no-op jobs/s ({scenarios['4']['jobs']:,} each) | {ratio_text(row['ratio'], 0.5)} of ceiling | ≥ 0.5 "
                f"| {yes(row['ratio'] >= 0.5)} |"
            )
    for number, scenario in (("1", "accept path"), ("2", "gateway-latency independence"), ("3", "async vs sync")):
        if number not in scenarios:
            rows.append(f"| {number} | {scenario} | not measured in this run | | — |")
    if "4" not in scenarios:
        rows.append("| 4 | worker throughput | not measured in this run | | — |")
    for key in ("5", "6"):
        if key in scenarios:
            rows += scenario_e2e.summary_rows(scenarios[key])
    if "7" in scenarios:
        s = scenarios["7"]
        rows.append(
            f"| 7 | {s['processes']} worker processes × {s['threads_per_process']} threads (`make run`'s setup): "
            f"{fmt(s['slow_per_second'])} payments settled/s with a 2,000 ms bank ({s['most_in_flight']} calls in "
            f"flight) vs {fmt(s['fast_per_second'])}/s at 0 ms | {ratio_text(s['figure'], 0.5)} | ≥ 0.5 "
            f"| {yes(s['met'])} |"
        )
    if "scale" in scenarios:
        rows += scenario_scale.summary_rows(scenarios["scale"])
    for number, scenario, target in NOT_MEASURED:
        if number not in scenarios:
            rows.append(f"| {number} | {scenario} | not measured in this run | {target} | — |")
    return rows


LOAD_COLUMNS = "req/s | p50 ms | p90 ms | p99 ms | errors | client CPU | daphne CPU | new Redis conns/req"


def _load_table(header: str, entries: list[tuple[str, dict]]) -> list[str]:
    rows = [
        [label, *(fmt(run[key]) for key in ("rps", "p50_ms", "p90_ms", "p99_ms")), run["errors"]]
        + [pct(run.get("client_cpu_share")), pct(run.get("server_cpu_share", {}).get("daphne"))]
        + [fmt(run.get("redis_connections_per_request"), 2)]
        for label, run in entries
    ]
    return table(f"{header} | {LOAD_COLUMNS}", rows)


def details(run: dict) -> list[str]:
    scenarios = run["scenarios"]
    out: list[str] = []
    if "1" in scenarios:
        s = scenarios["1"]
        out += [
            "### 1 · The accept path against the stack's ceiling",
            "",
            "`POST /api/v1/payments` (unique Idempotency-Key per request, one test card, no worker running) against "
            "`POST /api/v1/bench/ceiling`: token authentication, the same throttle, parser and renderer, the same "
            "body parsed, nothing else. Each run below is one load run; the summary row above is the median of "
            f"{run['budget']['repeats']} interleaved run(s) per side.",
            "",
        ]
        entries = []
        for row in s["rows"]:
            for side in ("ceiling", "accept"):
                for index, r in enumerate(row["runs"][side], 1):
                    entries.append((f"c={row['concurrency']} {side} #{index}", r))
        out += _load_table("run", entries) + [""]
    if "2" in scenarios:
        s = scenarios["2"]
        out += [
            "### 2 · The accept path does not wait for the bank",
            "",
            f"The same accept load ({s['concurrency']} clients) with the sandbox gateway answering at once and "
            f"after 2,000 ms, each time with `make run`'s {s['workers']} worker processes up and draining the queue. "
            "At 0 ms the workers settle payments as fast as they can and take CPU from daphne; at 2,000 ms they "
            "mostly wait. "
            f"Payments settled during the runs: {s['fast']['settled_during_runs']:,} at 0 ms, "
            f"{s['slow']['settled_during_runs']:,} at 2,000 ms.",
            "",
        ]
        entries = [(f"bank {side['latency_ms']:,} ms #{i}", r) for side in (s["fast"], s["slow"]) for i, r in
                   enumerate(side["runs"], 1)]  # fmt: skip
        out += _load_table("run", entries)
        out += [
            "",
            "Workers' CPU (share of one core) per run: "
            + ", ".join(
                f"{side['latency_ms']:,} ms: {pct(r['server_cpu_share'].get('workers'))}"
                for side in (s["fast"], s["slow"])
                for r in side["runs"]
            ),
            "",
        ]
    if "3" in scenarios:
        s = scenarios["3"]
        out += [
            "### 3 · The synchronous design the story argues against",
            "",
            f"{s['concurrency']} clients, gateway latency {s['latency_ms']:,} ms, no worker. "
            "`POST /api/v1/bench/payments-sync` does everything the accept path does and then what a worker does "
            "(risk checks, the gateway charge, the outcome) inside the request, answering 200 with the final status.",
            "",
        ]
        out += _load_table("endpoint", [("async accept (202)", s["accept"]), ("sync inline (200)", s["sync"])])
        out += [
            "",
            "The synchronous endpoint's ceiling is clients ÷ latency (here "
            f"{s['concurrency']} ÷ {s['latency_ms'] / 1000:g} s = "
            f"{s['concurrency'] / (s['latency_ms'] / 1000):g} req/s): "
            "daphne runs every synchronous Django request in a thread of its own, so a slow bank ties up a thread "
            "and a database connection per waiting shopper rather than the whole server, and the sync figure grows "
            "with the number of clients (and threads) until memory or the database's connection limit ends it. "
            "The accept path's figure does not depend on the latency at all.",
            "",
        ]
    if "4" in scenarios:
        s = scenarios["4"]
        out += [
            "### 4 · Worker throughput against the queue's ceiling",
            "",
            f"{s['jobs']:,} pending payments (each with its own card, recorded with the accept path's own services "
            "while no worker runs) drained by burst `payments_worker` processes (the worker `make run` starts, "
            f"{s['rows'][0]['payments'].get('threads_per_process', 1)} RQ workers on threads each) at gateway latency "
            f"0, against {s['jobs']:,} no-op "
            "jobs enqueued with the same options and drained by the same worker class and count. The rate is the job "
            "count over the span from the first job's start to the last job's end (RQ's own stamps), so process "
            "start-up is not counted.",
            "",
        ]
        rows = [
            [row["workers"], *(fmt(row[side][key], digits) for side in ("payments", "noop") for key, digits in RATE)]
            + [f"{row['ratio']:.2f}"]
            for row in s["rows"]
        ]
        out += table("workers | payments/s | span s | no-op jobs/s | span s | ratio", rows, left=0) + [""]
    for key in ("5", "6"):
        if key in scenarios:
            out += scenario_e2e.details(scenarios[key])
    if "7" in scenarios:
        out += scenario_7_details(scenarios["7"])
    if "scale" in scenarios:
        out += scenario_scale.details(scenarios["scale"])
    return out


def scenario_7_details(s: dict) -> list[str]:
    out = [
        "### 7 · The worker side under a slow bank",
        "",
        f"{s['payments']:,} pending payments (own card each, queued while no worker runs) settled by "
        f"{s['processes']} `payments_worker` processes with their default {s['threads_per_process']} threads "
        "(what `make run` starts), once with the sandbox bank answering at once and once after 2,000 ms, "
        "interleaved. The rate counts completions between the first and the last job's end (RQ's stamps), the "
        "steady rate without the first 2 s it takes to fill the pipeline. Little's law bounds the slow side at "
        f"calls in flight ÷ latency = {s['most_in_flight']} ÷ 2 s = {fmt(s['littles_law_bound_per_second'])}/s.",
        "",
    ]
    rows = [
        [f"{int(latency):,} ms", number, fmt(run["settled_per_second"]), run["most_in_flight"]]
        + [fmt(run["workers_peak_rss_mib"])]
        for latency, runs in s["runs"].items()
        for number, run in enumerate(runs, 1)
    ]
    out += table("bank latency | run | payments settled/s | jobs running at once (most) | workers' peak RSS MiB", rows)
    out += [
        "",
        f"Memory per bank call in flight: {fmt(s['mib_per_call_in_flight_threads'], 1)} MiB with threads (the worker "
        f"processes' peak RSS ÷ calls in flight) against {fmt(s['mib_per_call_in_flight_processes'], 1)} MiB for "
        "one call per process (an idle single-thread worker process). A hundred calls in flight as processes "
        "would need about "
        f"{fmt(s['mib_per_call_in_flight_processes'] * 100 / 1024, 1)} GiB; as threads, "
        f"{fmt(s['workers_peak_rss_mib'], 0)} MiB.",
        "",
    ]
    return out


def profile_section(run: dict, json_name: str) -> list[str]:
    profile = run.get("profile")
    out = ["## What the profile shows", ""]
    if not profile:
        out += ["No profile in this run (`--no-profile`).", ""]
    else:
        accept, ceiling, job = profile["accept"], profile["ceiling"], profile["job"]
        out += [
            "Measured in the harness's own process on the bench database and Redis (Django's test client: the same "
            "middleware, DRF views and services as under daphne, without the ASGI layer), after the load "
            f"scenarios. pyinstrument profiles: `bench/results/{accept['profile_txt']}`, "
            f"`bench/results/{job['profile_txt']}`.",
            "",
        ]
        rows = [
            [label, f"{fmt(entry['ms_per_call'], 2)} ms", len(entry["queries"]), fmt(entry["redis_commands_per_call"])]
            + [fmt(entry["redis_connections_per_call"])]
            for label, entry in (
                ("accept: `POST /api/v1/payments`", accept),
                ("ceiling: `POST /api/v1/bench/ceiling`", ceiling),
                ("worker: `payment_process_job` (latency 0)", job),
            )
        ]
        out += table("per call | time | SQL queries | Redis commands | new Redis connections", rows)
        server = profile.get("server")
        if server:
            out += [
                "",
                "**The server under load** (py-spy on the daphne process, 16 clients, share of its sampled busy "
                f"time; raw stacks: `bench/results/{server['accept']['collapsed']}`, "
                f"`bench/results/{server['ceiling']['collapsed']}`):",
                "",
            ]
            sides = (server["ceiling"], server["accept"])
            rows = [["the event-loop thread (daphne, Twisted, asyncio)", *(pct(s["event_loop_thread"]) for s in sides)]]
            for ceiling_row, accept_row in zip(*(side["categories"] for side in sides), strict=True):
                rows.append([accept_row["what"], pct(ceiling_row["share"]), pct(accept_row["share"])])
            out += table("under | ceiling | accept", rows)
            out += [
                "",
                f"New Redis connections per request over HTTP: ceiling "
                f"{fmt(server['ceiling']['load']['redis_connections_per_request'], 2)}, accept "
                f"{fmt(server['accept']['load']['redis_connections_per_request'], 2)}; compare the in-process "
                "figures below, where one long-lived cache object serves every request.",
            ]
        out += [
            "",
            "Where the accept path's time goes in-process (share of the profiled requests, outermost calls):",
            "",
        ]
        out += _steps(accept) + ["", "And the worker's job:", ""] + _steps(job)
        out += ["", "<details><summary>The SQL of one accept request</summary>", "", "```sql"]
        out += [_short_sql(sql) for sql in accept["queries"]]
        out += ["```", "", "</details>", "", "<details><summary>The SQL of one payment job</summary>", "", "```sql"]
        out += [_short_sql(sql) for sql in job["queries"]]
        out += ["```", "", "</details>", ""]
    if FINDINGS_PATH.is_file():
        out += [FINDINGS_PATH.read_text().strip(), ""]
    return out


def _steps(profile: dict) -> list[str]:
    rows = [[step["step"], f"`{step['function']}`", pct(step["share"])] for step in profile["steps"]]
    return table("step | function | share", rows, left=2)


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _short_sql(sql: str, limit: int = 160) -> str:
    flat = " ".join(sql.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def write_markdown(run: dict, path: Path, *, json_path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    chart = path.with_suffix(".png")
    has_chart = write_chart(run, chart)
    m = run["machine"]
    b = run["budget"]
    json_shown = json_path.relative_to(BASE_DIR) if json_path.is_relative_to(BASE_DIR) else json_path
    packages = ", ".join(f"{name} {version}" for name, version in m["packages"].items())
    lines = [
        "# Benchmarks",
        "",
        f"Generated by `make bench` on {when(run['stamp'])} in {run['seconds']:.0f} s; the raw figures are in "
        f"`{json_shown}`. Every figure is a ratio of two things measured side by side in the same run, on the "
        "same server and settings; absolute numbers are context only (a small, shared machine, which also runs "
        "the load client).",
        "",
        "## The command",
        "",
        "```sh",
        f"make bench            # {run['command']}",
        "make bench BENCH_ARGS=--quick                  # CI smoke: tiny counts, under a minute",
        "DATABASE_URL=postgres://postgres@127.0.0.1:5432/checkout make bench  # PostgreSQL, database checkout_bench",
        "make bench BENCH_ARGS='--scenarios 5,6'       # some scenarios only: the report goes next to the JSON",
        "```",
        "",
        f"Budget `{b['name']}`: each load run is at least {b['warmup']:g} s of warm-up (until every client has had "
        f"an answer) then a {b['duration']:g} s measured "
        f"window (scenario 3's synchronous side: {b['s3_warmup']:g} s + {b['s3_duration']:g} s), at most "
        f"{b['max_requests']:,} requests; {b['repeats']} interleaved run(s) per side; scenario 4 drains "
        f"{b['s4_jobs']:,} jobs per run.",
        "",
        "## The machine",
        "",
        "| | |",
        "|---|---|",
        f"| cores (`nproc`) | {m['nproc']} ({m['cpu']}) |",
        f"| memory | {m['memory_gib']} GiB |",
        f"| load average (1 min) | {fmt(run.get('load_before'), 2)} before the run, {fmt(m.get('load_average'), 2)} "
        "after (the machine is shared: other work on it shows here) |",
        f"| OS | {m['os']} |",
        f"| Python | {m['python']} |",
        f"| packages | {packages} |",
        f"| database | {run['database']} |",
        f"| Redis | {run['redis']} |",
        "| server | one daphne process as `make run` starts it, serving `bench.asgi:application` (the product's "
        "`config.asgi` application plus the bench-only socket), DEBUG off |",
        "| load client | one asyncio process with one httpx.AsyncClient (closed loop, fixed concurrency); "
        "its CPU is in the tables (share of one core) |",
        "",
        "## Results",
        "",
        "| # | what was measured | figure | target | met |",
        "|---|---|---|---|---|",
        *summary_rows(run),
        "",
    ]
    missed = [number for number, result in run["scenarios"].items() if "met" in result and not result["met"]]
    if missed:
        lines += [
            f"Missed in this run: scenario{'s' if len(missed) > 1 else ''} {_and(missed)}. Why, from the "
            "profiles: see "
            "[What the profile shows](#what-the-profile-shows).",
            "",
        ]
    if has_chart:
        lines += [f"![The figures of this run]({chart.name})", ""]
    lines += ["## Each scenario", "", *details(run)]
    if CHOICES_PATH.is_file():
        lines += [CHOICES_PATH.read_text().strip(), ""]
    lines += profile_section(run, json_path.name)
    lines += [
        "## How it is measured, and how to extend it",
        "",
        "- `bench/stack.py` starts Redis (the server at REDIS_URL on its database 15, else an embedded Valkey), a "
        "fresh bench database (SQLite under var/bench/, or `checkout_bench` on DATABASE_URL's PostgreSQL), daphne "
        "and worker processes (`payments_worker`) with the commands `make run` uses. Limits are raised so they do "
        "not distort a run (throttle, backlog bound, velocity limit, the sandbox card's balance; gateway jitter 0). "
        "Process logs: "
        "var/bench/logs/.",
        "- `bench/load.py` is the client: closed loop, fixed concurrency, bounded in time and in count; throughput "
        "counts the answers that arrive inside the measured window; percentiles are linearly interpolated.",
        "- The bench-only endpoints, job and socket (`bench/views.py`, `bench/jobs.py`, `bench/consumers.py`) exist "
        "only under the bench's own settings (`bench/settings.py`: the product's, plus the bench app, URLs and ASGI "
        "application), which the harness gives its own processes.",
        "- A new scenario is a function returning a dict with `figure`, `target` and `met`, registered in "
        "`bench/run.py` (`ORDER`, `registry()`), plus its rows in `bench/report.py`. `python -m bench.report "
        "bench/results/<stamp>.json` rewrites this page from a run's JSON; the reading of the profile is "
        "`bench/findings.md`.",
        "",
    ]
    path.write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    """Rewrite a report from a run's raw JSON: python -m bench.report bench/results/<stamp>.json [--doc PATH]"""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench.report", description=main.__doc__)
    parser.add_argument("json", type=Path)
    parser.add_argument("--doc", type=Path, default=BASE_DIR / "docs" / "benchmarks.md")
    args = parser.parse_args(argv)
    json_path = args.json.resolve()
    write_markdown(json.loads(json_path.read_text()), args.doc.resolve(), json_path=json_path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
