"""Prometheus metrics of the payments (prometheus-client), served by /metrics (payments/monitoring.py).

Several processes make these numbers: daphne accepts payments and holds the sockets, the workers settle
payments and call the bank, the reconciler re-drives. With PROMETHEUS_MULTIPROC_DIR set (`make run` sets it),
prometheus-client's multiprocess mode has every process write its values to files in that directory, and
/metrics, in whichever daphne answers, adds up the files of every process of the host, live or dead (a
restarted worker's counts are kept). Without it each process counts for itself and /metrics shows the answering
process alone: fine for tests, wrong for a deployment (docs/operations.md, "Metrics").

What moves a number:
- status changes: a `status_changed` receiver (payments/events.py), after commit, in the process that made the
  change; the transition knows nothing of metrics;
- the accept path, the bank calls, the pushes, the sockets, the replays and the reconciler: where they happen;
- the queue and its workers: read from Redis when /metrics is asked (QueueCollector), under a short timeout.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from contextlib import contextmanager
from datetime import datetime

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from redis.exceptions import RedisError

from payments.events import PAYMENT, REFUND
from payments.gateway import GatewayTimeout, GatewayUnavailable
from payments.models import OUTCOME_STATUSES, UNSETTLED_STATUSES, Actor, PaymentStatus, RefundStatus

# Seconds. The bank answers in about a second (SANDBOX_LATENCY_MS); an unknown payment can take minutes to settle.
_GATEWAY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60)
_PROCESSING_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30, 60, 120)
_END_TO_END_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)

PAYMENTS_ACCEPTED = Counter(
    "payments_accepted", "Payments recorded and committed (a 202 or the checkout's redirect), by channel", ["channel"]
)
PAYMENTS_SETTLED = Counter(
    "payments_settled", "Payments that reached their first outcome: succeeded, failed or canceled", ["outcome"]
)
PAYMENTS_UNKNOWN = Counter(
    "payments_unknown", "Payments and refunds that went to unknown (the bank's answer never came)", ["kind"]
)
PAYMENTS_REQUIRES_ACTION = Counter(
    "payments_requires_action",
    "Times the bank asked the cardholder to authenticate (3-D Secure) before it would charge: payments entering "
    "requires_action",
)
REFUNDS_SETTLED = Counter("payments_refunds_settled", "Refunds that reached an outcome", ["outcome"])
PROCESSING_SECONDS = Histogram(
    "payments_processing_seconds",
    "From a worker taking a payment (processing) to its outcome, in the worker that took it",
    ["outcome"],
    buckets=_PROCESSING_BUCKETS,
)
END_TO_END_SECONDS = Histogram(
    "payments_end_to_end_seconds",
    "From a payment's creation to its first outcome (succeeded, failed or canceled)",
    ["outcome"],
    buckets=_END_TO_END_BUCKETS,
)
GATEWAY_SECONDS = Histogram(
    "payments_gateway_call_seconds", "Calls to the payment gateway, answered or not", ["call"], buckets=_GATEWAY_BUCKETS
)
GATEWAY_ERRORS = Counter(
    "payments_gateway_errors",
    "Gateway calls that raised: unavailable (never reached the bank), timeout (no answer), error (anything else)",
    ["call", "error"],
)
WEBSOCKET_CONNECTIONS = Gauge(
    "payments_websocket_connections",
    "Payment WebSockets open now (accepted with a valid token)",
    multiprocess_mode="livesum",
)
PUSHES = Counter("payments_pushes", "Status documents pushed to the channel layer, by result", ["result"])
IDEMPOTENT_REPLAYS = Counter("payments_idempotent_replays", "API writes answered with a stored answer (replays)")
RECONCILER_PASSES = Counter("payments_reconciler_passes", "Passes of the reconciler")
RECONCILER_ACTIONS = Counter(
    "payments_reconciler_actions", "What the reconciler did (requeued, lease_expired, ...), by action", ["action"]
)

CHANNELS = {Actor.API: "api", Actor.WEB: "web"}


def payment_accepted_count(actor: str) -> None:
    """Called on commit of a new payment (payments.services.payments.payment_create)."""
    PAYMENTS_ACCEPTED.labels(channel=CHANNELS.get(actor, "other")).inc()


@contextmanager
def gateway_call_observed(call: str):
    """Times one gateway call and counts it if it raises; the exception goes on unchanged."""
    started = time.perf_counter()
    try:
        yield
    except GatewayUnavailable:
        GATEWAY_ERRORS.labels(call=call, error="unavailable").inc()
        raise
    except GatewayTimeout:
        GATEWAY_ERRORS.labels(call=call, error="timeout").inc()
        raise
    except Exception:  # the job's own timeout, anything: the caller decides what it means
        GATEWAY_ERRORS.labels(call=call, error="error").inc()
        raise
    finally:
        GATEWAY_SECONDS.labels(call=call).observe(time.perf_counter() - started)


def push_count(*, sent: bool) -> None:
    PUSHES.labels(result="sent" if sent else "failed").inc()


def websocket_opened() -> None:
    WEBSOCKET_CONNECTIONS.inc()


def websocket_closed() -> None:
    WEBSOCKET_CONNECTIONS.dec()


def idempotent_replay_count() -> None:
    IDEMPOTENT_REPLAYS.inc()


def reconciler_pass_count(done: dict[str, int]) -> None:
    RECONCILER_PASSES.inc()
    for action, count in done.items():
        RECONCILER_ACTIONS.labels(action=action).inc(count)


# --- the status_changed receiver ------------------------------------------------------------------------------

# When each payment this process took entered processing, until its outcome (the same job, so the same process).
# Bounded: a payment whose outcome this process never records (its lease ran out) must not stay forever.
_PROCESSING_SINCE_MAX = 10_000
_processing_since: OrderedDict[str, datetime] = OrderedDict()
_processing_lock = threading.Lock()


def _at(document: dict, field: str) -> datetime:
    return datetime.fromisoformat(document[field])


def metrics_on_status_changed(sender, change, **kwargs) -> None:
    """A `status_changed` receiver (payments/events.py): after commit, in the process that made the change."""
    if change.kind == REFUND:
        if change.to_status in (RefundStatus.SUCCEEDED, RefundStatus.FAILED):
            REFUNDS_SETTLED.labels(outcome=change.to_status).inc()
        elif change.to_status == RefundStatus.UNKNOWN:
            PAYMENTS_UNKNOWN.labels(kind=REFUND).inc()
        return
    if change.kind != PAYMENT:
        return
    document = change.document
    if change.to_status == PaymentStatus.PROCESSING:
        with _processing_lock:
            _processing_since[change.payment_id] = _at(document, "updated_at")
            while len(_processing_since) > _PROCESSING_SINCE_MAX:
                _processing_since.popitem(last=False)
        return
    with _processing_lock:
        since = (
            _processing_since.pop(change.payment_id, None) if change.from_status == PaymentStatus.PROCESSING else None
        )
    if change.to_status == PaymentStatus.UNKNOWN:
        PAYMENTS_UNKNOWN.labels(kind=PAYMENT).inc()
        return
    if change.to_status == PaymentStatus.REQUIRES_ACTION:
        PAYMENTS_REQUIRES_ACTION.inc()
        return
    # The first outcome only: a refund's later change (succeeded → refunded) is not a payment settling again.
    if change.to_status not in OUTCOME_STATUSES or change.from_status not in UNSETTLED_STATUSES:
        return
    outcome = change.to_status
    settled_at = _at(document, "updated_at")
    PAYMENTS_SETTLED.labels(outcome=outcome).inc()
    END_TO_END_SECONDS.labels(outcome=outcome).observe(
        max(0.0, (settled_at - _at(document, "created_at")).total_seconds())
    )
    if since is not None:
        PROCESSING_SECONDS.labels(outcome=outcome).observe(max(0.0, (settled_at - since).total_seconds()))


# --- what /metrics serves ---------------------------------------------------------------------------------------


class QueueCollector:
    """The queue's depth, its oldest job's age and its live workers, read from Redis at each scrape (two round
    trips, 1 s socket timeouts). When Redis does not answer, only payments_queue_redis_up (0) is reported."""

    def collect(self):
        from payments.queue_state import payments_queue_state  # imports rq and the queue client: only when scraped

        up = GaugeMetricFamily("payments_queue_redis_up", "1 when the queue's Redis answered this scrape")
        try:
            state = payments_queue_state()
        except (RedisError, OSError):
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield GaugeMetricFamily("payments_queue_jobs", "Jobs waiting in the payments queue", value=state.queued)
        yield GaugeMetricFamily(
            "payments_queue_oldest_job_age_seconds",
            "How long the job at the head of the payments queue has waited (0 when none waits)",
            value=state.oldest_job_age,
        )
        yield GaugeMetricFamily(
            "payments_workers_live", "RQ workers of the payments queue that are alive", value=state.workers_live
        )


class _ThisProcess:
    """The default registry's metrics (this process's), as one collector of another registry."""

    def collect(self):
        return REGISTRY.collect()


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def metrics_registry() -> CollectorRegistry:
    """Every process's metrics (multiprocess mode) or this process's, and the queue's, read now."""
    registry = CollectorRegistry()
    if multiprocess_dir():
        MultiProcessCollector(registry)
    else:
        registry.register(_ThisProcess())
    registry.register(QueueCollector())
    return registry
