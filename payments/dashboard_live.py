"""What makes the staff dashboard live: a `status_changed` receiver that tells every open dashboard to read
its figures again, at most once a second per process.

The tick carries no figures: each socket reads them from the database (payments/dashboard.py), so a dropped
tick (channels-redis is at-most-once) costs nothing but a second or two, and the consumer's own periodic
refresh catches up anyway. A burst of a thousand outcomes is one tick now and one a second later, not a
thousand group sends.
"""

from __future__ import annotations

import threading
import time

import structlog

from payments.realtime import group_send_soon

logger = structlog.get_logger(__name__)

DASHBOARD_GROUP = "staff-dashboard"
TICK_MESSAGE_TYPE = "dashboard.tick"
TICK_MIN_INTERVAL = 1.0
TICK_TIMEOUT_SECONDS = 2.0


def _tick_failed(future) -> None:
    if not future.cancelled() and future.exception() is not None:
        # A hint only: the dashboards read their figures on their own every few seconds.
        logger.warning("dashboard tick failed", exc_info=future.exception())


def _send_tick() -> None:
    # Not waited for: the thread that committed the change (a worker's job, a request) goes on at once, even
    # when Redis is slow or away.
    group_send_soon(DASHBOARD_GROUP, {"type": TICK_MESSAGE_TYPE}, timeout=TICK_TIMEOUT_SECONDS).add_done_callback(
        _tick_failed
    )


class _Throttle:
    """Run `action` now if it has not run for `interval` seconds; else once, when the interval is up (so the
    last change of a burst is shown too)."""

    def __init__(self, action, interval: float) -> None:
        self._action, self._interval = action, interval
        self._lock = threading.Lock()
        self._last = float("-inf")
        self._trailing: threading.Timer | None = None

    def __call__(self) -> None:
        with self._lock:
            wait = self._last + self._interval - time.monotonic()
            if wait > 0:
                if self._trailing is None:
                    self._trailing = threading.Timer(wait, self._fire_trailing)
                    self._trailing.daemon = True
                    self._trailing.start()
                return
            self._last = time.monotonic()
        self._action()

    def _fire_trailing(self) -> None:
        with self._lock:
            self._trailing = None
            self._last = time.monotonic()
        self._action()


_tick = _Throttle(_send_tick, TICK_MIN_INTERVAL)


def dashboard_on_status_changed(sender, change, **kwargs) -> None:
    """A `status_changed` receiver (payments/events.py): a payment's or refund's change moves the figures."""
    _tick()
