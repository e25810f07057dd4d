"""Webhook deliveries on /metrics (payments/metrics.py serves every registered metric, in multiprocess mode too)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

WEBHOOK_ATTEMPTS = Counter(
    "webhooks_attempts",
    "Tries at delivering a webhook event, by outcome: delivered (2xx), retrying (another try is scheduled), failed "
    "(the last try of the schedule), not_sent (its endpoint was disabled)",
    ["outcome"],
)
WEBHOOK_LATENCY = Histogram(
    "webhooks_attempt_seconds",
    "From sending a webhook to its answer (or to giving up waiting)",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
)


def webhook_attempt_count(outcome: str, latency_ms: float | None = None) -> None:
    WEBHOOK_ATTEMPTS.labels(outcome=outcome).inc()
    if latency_ms is not None:
        WEBHOOK_LATENCY.observe(latency_ms / 1000)
