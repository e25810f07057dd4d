"""The figures of the live staff dashboard (/admin/payments/dashboard/): one selector, bounded reads.

Every read rides an index of Payment: outcomes per minute and the time-to-outcome sample on
(status, updated_at), the stuck count on (status, recheck_at). A payment is counted once, in the minute of its
latest status change and under its current status: a payment refunded since it succeeded shows in the minute of
its refund, as "refunded". The queue's figures come from Redis (payments/queue_state.py, 1 s timeouts); with
Redis away they are None and the rest still answers.
"""

from __future__ import annotations

from datetime import UTC, timedelta

from django.conf import settings
from django.db.models import Count, Q
from django.db.models.functions import TruncMinute
from django.utils import timezone
from redis.exceptions import RedisError

from payments.models import Payment, PaymentStatus
from payments.queue_state import payments_queue_state

S = PaymentStatus
WINDOW_MINUTES = 30
LATENCY_WINDOW = timedelta(minutes=15)
LATENCY_SAMPLE = 2000  # the most recent outcomes the percentiles are computed over
# Series of the per-minute chart, and the statuses each counts.
SERIES = {
    "succeeded": (S.SUCCEEDED,),
    "failed": (S.FAILED,),
    "canceled": (S.CANCELED,),
    "unknown": (S.UNKNOWN,),
    "refunded": (S.PARTIALLY_REFUNDED, S.REFUNDED),
}
_SERIES_OF = {status: name for name, statuses in SERIES.items() for status in statuses}
# created → outcome: the states that answer "did I pay?" as their first answer.
_FIRST_OUTCOMES = (S.SUCCEEDED, S.FAILED, S.CANCELED)


def _percentile(sorted_values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile (None of nothing)."""
    if not sorted_values:
        return None
    rank = max(1, -(-len(sorted_values) * fraction // 1))  # ceil(n * fraction), at least the first
    return sorted_values[int(rank) - 1]


def _per_minute(*, since, now) -> list[dict]:
    counts = (
        Payment.objects.filter(status__in=list(_SERIES_OF), updated_at__gte=since, updated_at__lte=now)
        .annotate(minute=TruncMinute("updated_at", tzinfo=UTC))
        .values("minute", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    first = since.astimezone(UTC).replace(second=0, microsecond=0)
    minutes = {first + timedelta(minutes=i): dict.fromkeys(SERIES, 0) for i in range(WINDOW_MINUTES + 1)}
    for row in counts:
        minute = row["minute"].astimezone(UTC).replace(second=0, microsecond=0)
        if minute in minutes:
            minutes[minute][_SERIES_OF[row["status"]]] += row["n"]
    return [{"minute": minute.isoformat(), **counts} for minute, counts in sorted(minutes.items())]


def _time_to_outcome(*, now) -> dict:
    durations = sorted(
        (updated - created).total_seconds()
        for created, updated in Payment.objects.filter(
            status__in=_FIRST_OUTCOMES, updated_at__gte=now - LATENCY_WINDOW, updated_at__lte=now
        )
        .order_by("-updated_at")
        .values_list("created_at", "updated_at")[:LATENCY_SAMPLE]
    )
    return {
        "p50": _percentile(durations, 0.50),
        "p99": _percentile(durations, 0.99),
        "sample": len(durations),
        "window_seconds": int(LATENCY_WINDOW.total_seconds()),
    }


def _queue() -> dict:
    try:
        state = payments_queue_state()
    except (RedisError, OSError):
        return {"depth": None, "oldest_job_age": None, "workers": None}
    return {"depth": state.queued, "oldest_job_age": round(state.oldest_job_age, 1), "workers": state.workers_live}


def staff_dashboard_figures(*, now=None) -> dict:
    """Everything the dashboard shows, as a JSON-ready dict (the page's first render and every socket frame)."""
    now = now or timezone.now()
    since = now - timedelta(minutes=WINDOW_MINUTES)
    # Filtered first, so the (status, ...) indexes bound the read to these states' rows.
    counts = Payment.objects.filter(status__in=[S.UNKNOWN, S.PENDING, S.PROCESSING, S.REQUIRES_ACTION]).aggregate(
        unknown=Count("id", filter=Q(status=S.UNKNOWN)),
        # Shoppers at their bank's 3-D Secure page now: not stuck, no worker holds them (requires_action).
        requires_action=Count("id", filter=Q(status=S.REQUIRES_ACTION)),
        # What the reconciler takes for lost: pending past PAYMENTS_PENDING_GRACE, processing past its lease
        # (payments/services/reconcile.py; recheck_at is set to exactly that on entering each state).
        stuck=Count("id", filter=Q(status__in=[S.PENDING, S.PROCESSING], recheck_at__lte=now)),
    )
    return {
        "at": now.isoformat(),
        "window_minutes": WINDOW_MINUTES,
        "series": list(SERIES),
        "per_minute": _per_minute(since=since, now=now),
        "time_to_outcome": _time_to_outcome(now=now),
        "unknown": counts["unknown"],
        "requires_action": counts["requires_action"],
        "stuck": counts["stuck"],
        "pending_grace_seconds": settings.PAYMENTS_PENDING_GRACE,
        "queue": _queue(),
    }
