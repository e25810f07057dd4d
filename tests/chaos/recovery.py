"""How long after each fault the system was processing at full rate again.

Definitions (the report prints them):
- settled/s at time t: payments that reached their first outcome (succeeded, failed, canceled: the event's
  time in the database) in the sliding window (t − W, t], divided by W; sampled every 0.5 s.
- full rate: the median of that over the clean stretch before the first fault (after the first window),
  when clients arrive at the planned rate and nothing is broken.
- a fault dips the rate if, while it acts or within one window after it ends, settled/s falls below
  (1 − tolerance) × full rate. No dip: recovery 0 s (the system never slowed down visibly).
- recovery time: from the fault's end (the process killed, the lock released, SIGCONT sent, the bank back)
  to the first sample, at or after both the dip and the fault's end, where settled/s is back at or above
  (1 − tolerance) × full rate. Not back before the next fault (or the end of the load): reported as
  "more than" the time there was.
"""

from __future__ import annotations

import bisect
import statistics

STEP = 0.5
TOLERANCE = 0.2


def rate_series(settled_offsets: list[float], *, end: float, window: float) -> list[tuple[float, float]]:
    """[(t, settled/s over (t - window, t])] for t from 0 to `end` every STEP seconds."""
    times = sorted(settled_offsets)
    series = []
    steps = int(end / STEP) + 1
    for index in range(steps):
        t = index * STEP
        inside = bisect.bisect_right(times, t) - bisect.bisect_right(times, t - window)
        series.append((t, inside / window))
    return series


def full_rate(series: list[tuple[float, float]], *, first_fault: float, window: float) -> float:
    rates = [rate for t, rate in series if window <= t < first_fault]
    return statistics.median(rates) if rates else float("nan")


def recovery(
    series: list[tuple[float, float]],
    *,
    started: float,
    ended: float,
    limit: float,
    baseline: float,
    window: float,
    tolerance: float = TOLERANCE,
) -> dict:
    """The recovery of one fault that acted over [started, ended]; `limit`: the next fault's start or the
    load's end, whichever comes first."""
    threshold = (1 - tolerance) * baseline
    watched = [(t, rate) for t, rate in series if started <= t <= limit]
    dip = next((t for t, rate in watched if rate < threshold and t <= ended + window), None)
    lowest = min((rate for _, rate in watched if t_in(_, started, ended + window)), default=float("nan"))
    result = {"threshold": round(threshold, 2), "lowest_rate": round(lowest, 2)}
    if dip is None:
        return {**result, "dipped": False, "seconds": 0.0, "recovered": True}
    back = next((t for t, rate in watched if t >= max(dip, ended) and rate >= threshold), None)
    if back is None:
        return {**result, "dipped": True, "seconds": round(max(0.0, limit - ended), 1), "recovered": False}
    return {**result, "dipped": True, "seconds": round(max(0.0, back - ended), 1), "recovered": True}


def t_in(t: float, low: float, high: float) -> bool:
    return low <= t <= high
