"""The load generator: fixed concurrency, bounded in time and in count, latency percentiles.

One asyncio loop and one httpx.AsyncClient whose pool is sized to the concurrency; C client tasks each send a
request, wait for its answer and send the next (a closed loop, so the offered load follows the server). With
several `urls` (the same endpoint on several server processes) the clients are dealt to them round-robin, so
each server gets C / len(urls) of them: the load spreads without a load balancer in front.
The run is a warm-up (at least `warmup` seconds, and until every client has had one answer, bounded by
`max_warmup`), then a measured window: requests that complete inside the window are the figures
(throughput = completions / window, percentiles of their latencies); requests still in flight at the end
are awaited (bounded by the request timeout) but not counted.

It runs in its own process (`python -m bench.load --spec JSON`, printing a JSON result) so that its CPU is
its own and can be reported: the client and the server share the machine's cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field

PAYMENT_BODY = {
    "amount": 2400,
    "currency": "USD",
    "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"},
}


@dataclass
class LoadSpec:
    url: str  # the URL every client posts to, unless `urls` is given
    concurrency: int
    duration: float  # the measured window, seconds
    warmup: float = 1.0  # seconds of load before the window opens (and every client has had an answer)
    max_warmup: float = 15.0  # the window opens by then whatever happened
    max_requests: int = 100_000  # hard bound on requests sent, warm-up included
    token: str = ""
    expect_status: int = 202
    timeout: float = 30.0
    # Several URLs (one per server process): client i posts to urls[i % len(urls)]. Empty: [url].
    urls: list[str] = field(default_factory=list)

    def targets(self) -> list[str]:
        return list(self.urls) or [self.url]


@dataclass
class LoadResult:
    url: str
    concurrency: int
    window_s: float
    completed: int  # in the window, any status
    ok: int  # in the window, with the expected status
    errors: int  # in the window: another status or a transport error
    statuses: dict
    rps: float  # ok / window
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    sent_total: int
    elapsed_s: float  # the whole run: warm-up, window and the last answers
    client_cpu_s: float  # CPU the client process used in the window
    client_cpu_share: float  # client_cpu_s / window: 1.0 is one core busy
    budget_exhausted: bool
    error_samples: list
    ok_by_url: dict = field(default_factory=dict)  # in the window, expected-status answers per target URL
    window_start_unix: float = math.nan  # the measured window in wall-clock time (time.time()), so that what
    window_end_unix: float = math.nan  # other processes did in it (e.g. payments settled) can be counted


def percentile(sorted_values: list[float], q: float) -> float:
    """The q-th percentile (0–100) of sorted values, linearly interpolated between closest ranks (numpy's
    default). NaN for no values."""
    if not sorted_values:
        return math.nan
    if not 0 <= q <= 100:
        raise ValueError("q must be between 0 and 100")
    position = (len(sorted_values) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    fraction = position - low
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * fraction


def summarize_latencies(latencies_s: list[float], digits: int | None = None) -> dict:
    """p50, p90, p99 and max in milliseconds, rounded to `digits` if given."""
    ordered = sorted(latencies_s)
    summary = {
        "p50_ms": percentile(ordered, 50) * 1000,
        "p90_ms": percentile(ordered, 90) * 1000,
        "p99_ms": percentile(ordered, 99) * 1000,
        "max_ms": (ordered[-1] * 1000) if ordered else math.nan,
    }
    return summary if digits is None else {key: round(value, digits) for key, value in summary.items()}


async def run_load(spec: LoadSpec) -> LoadResult:
    import httpx  # here, not at import: the percentile helpers are used without it

    headers = {"Content-Type": "application/json"}
    if spec.token:
        headers["Authorization"] = f"Token {spec.token}"
    body = json.dumps(PAYMENT_BODY).encode()
    limits = httpx.Limits(max_connections=spec.concurrency, max_keepalive_connections=spec.concurrency)
    key_prefix = uuid.uuid4().hex[:12]

    targets = spec.targets()
    records: list[tuple[float, float, int, int]] = []  # (start, end, status, target); status 0: transport error
    error_samples: list[str] = []
    sent = 0
    budget_exhausted = False
    start = time.perf_counter()
    unix_offset = time.time() - start  # perf_counter → wall clock, for window_start_unix/window_end_unix
    # The window opens after the warm-up, and not before every client has had an answer (a first wave of
    # slow answers is start-up, not steady state), but at the latest after max_warmup.
    window_open = math.inf
    window_close = math.inf
    cpu_at_open: float | None = None

    def open_window_if_due(now: float) -> None:
        nonlocal window_open, window_close, cpu_at_open
        if window_open != math.inf or now < start + spec.warmup:
            return
        if len(records) >= spec.concurrency or now >= start + spec.max_warmup:
            window_open, window_close = now, now + spec.duration
            cpu_at_open = time.process_time()

    async with httpx.AsyncClient(limits=limits, timeout=spec.timeout, headers=headers) as client:

        async def one_client(target: int) -> None:
            nonlocal sent, budget_exhausted
            url = targets[target]
            while True:
                now = time.perf_counter()
                open_window_if_due(now)
                if now >= window_close:
                    return
                if sent >= spec.max_requests:
                    budget_exhausted = True
                    return
                sent += 1
                key = {"Idempotency-Key": f"{key_prefix}-{sent}"}  # a fresh one per request; the ceiling ignores it
                began = time.perf_counter()
                try:
                    response = await client.post(url, content=body, headers=key)
                    status = response.status_code
                    if status != spec.expect_status and len(error_samples) < 5:
                        error_samples.append(f"{status}: {response.text[:300]}")
                except httpx.HTTPError as error:
                    status = 0
                    if len(error_samples) < 5:
                        error_samples.append(f"transport: {error!r}")
                records.append((began, time.perf_counter(), status, target))

        await asyncio.gather(*(one_client(number % len(targets)) for number in range(spec.concurrency)))

    finished = time.perf_counter()
    cpu_at_close = time.process_time()
    if window_open == math.inf:  # the budget ran out during the warm-up
        window_open = window_close = finished
    # A window cut short by the request budget ends with the last completion.
    last_end = max((end for _, end, _, _ in records), default=finished)
    close = min(window_close, last_end) if budget_exhausted else window_close
    window = max(close - window_open, 1e-9)
    if cpu_at_open is None:
        cpu_at_open = cpu_at_close
    in_window = [record for record in records if window_open <= record[1] <= close]
    ok = [end - began for began, end, status, _ in in_window if status == spec.expect_status]
    statuses = Counter(str(status) for _, _, status, _ in in_window)
    ok_by_target = Counter(target for _, _, status, target in in_window if status == spec.expect_status)
    client_cpu = max(cpu_at_close - cpu_at_open, 0.0)
    return LoadResult(
        url=spec.url,
        concurrency=spec.concurrency,
        window_s=round(window, 3),
        completed=len(in_window),
        ok=len(ok),
        errors=len(in_window) - len(ok),
        statuses=dict(statuses),
        rps=len(ok) / window,
        **summarize_latencies(ok),
        sent_total=sent,
        elapsed_s=round(finished - start, 3),
        client_cpu_s=round(client_cpu, 3),
        client_cpu_share=round(client_cpu / max(finished - window_open, 1e-9), 3),
        budget_exhausted=budget_exhausted,
        error_samples=error_samples,
        ok_by_url={url: ok_by_target.get(number, 0) for number, url in enumerate(targets)},
        window_start_unix=window_open + unix_offset,
        window_end_unix=close + unix_offset,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Closed-loop HTTP load at a fixed concurrency (prints JSON).")
    parser.add_argument("--spec", required=True, help="a LoadSpec as JSON")
    args = parser.parse_args(argv)
    spec = LoadSpec(**json.loads(args.spec))
    result = asyncio.run(run_load(spec))
    json.dump(asdict(result), sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
