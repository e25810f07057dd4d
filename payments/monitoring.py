"""What a load balancer, an orchestrator and Prometheus ask: /healthz, /readyz and /metrics.

- /healthz: the process answers. Touches neither the database nor Redis.
- /readyz: the database, the queue's Redis, at least one live worker and a queue under PAYMENTS_MAX_BACKLOG, each
  checked on a thread of a small pool under one deadline (READINESS_TIMEOUT), so a dependency that hangs (a
  paused Redis, a stalled database) makes a 503 within seconds, never a hung probe. The answer names each check
  and what failed, nothing more: no host, no error text, no count (those are on /metrics, which is not public).
- /metrics: Prometheus's text format (payments/metrics.py), for a staff session or `Authorization: Bearer
  <METRICS_TOKEN>`; 401 otherwise (403 for a signed-in user who is not staff).

/healthz and /readyz are answered by infrastructure.middleware.ProbeMiddleware ahead of host validation, the
HTTPS redirect and the session: a load balancer asks by the instance's address, over plain HTTP, with no
cookie. /metrics takes the whole middleware chain, like any page a staff session can open.
"""

from __future__ import annotations

import hmac
import logging
from concurrent.futures import ThreadPoolExecutor, wait

from django.conf import settings
from django.db import connections
from django.http import HttpResponse, JsonResponse
from django.views.decorators.http import require_safe
from prometheus_client.exposition import choose_encoder
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from payments.metrics import metrics_registry

logger = logging.getLogger(__name__)
NO_STORE = "no-store"
# One pool for every probe of the process: a check that hangs holds one of its threads until its own timeout
# (Redis's 1 s socket timeout, the database's), and at most this many, however often the probes come.
_checks = ThreadPoolExecutor(max_workers=4, thread_name_prefix="readyz")


def _json(body: dict, status: int = 200) -> JsonResponse:
    response = JsonResponse(body, status=status)
    response["Cache-Control"] = NO_STORE
    return response


@require_safe
def healthz(request):
    return _json({"status": "ok"})


# --- readiness ---------------------------------------------------------------------------------------------------


def _database() -> dict:
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
        return {"ok": True}
    finally:
        connections["default"].close()  # this pool thread's connection: back to the pool, or closed


def _queue() -> dict:
    from payments.queue_state import payments_queue_state  # rq and the queue client, once asked

    try:
        state = payments_queue_state()
    except RedisTimeoutError:
        return {"redis": "timeout"}
    except (RedisError, OSError):
        return {"redis": "unreachable"}
    return {"state": state}


def readiness_checks() -> dict[str, dict]:
    """{check: {"ok": bool, "detail": str (when not ok)}} for database, redis, workers and queue."""
    timeout = settings.READINESS_TIMEOUT
    database = _checks.submit(_database)
    queue = _checks.submit(_queue)
    wait([database, queue], timeout=timeout)
    checks: dict[str, dict] = {}

    if not database.done():
        checks["database"] = {"ok": False, "detail": "timeout"}
    elif database.exception() is not None:
        checks["database"] = {"ok": False, "detail": "unreachable"}
    else:
        checks["database"] = {"ok": True}

    if not queue.done():
        answer = {"redis": "timeout"}
    elif queue.exception() is not None:
        answer = {"redis": "error"}
    else:
        answer = queue.result()
    if "redis" in answer:
        unchecked = {"ok": False, "detail": "not checked: redis did not answer"}
        checks |= {"redis": {"ok": False, "detail": answer["redis"]}, "workers": unchecked, "queue": unchecked}
        return checks
    state = answer["state"]
    checks["redis"] = {"ok": True}
    checks["workers"] = {"ok": True} if state.workers_live > 0 else {"ok": False, "detail": "no live worker"}
    # Over the limit exactly when POST /api/v1/payments sheds load (payments.api.views).
    checks["queue"] = (
        {"ok": True}
        if state.queued <= settings.PAYMENTS_MAX_BACKLOG
        else {"ok": False, "detail": "backlog over PAYMENTS_MAX_BACKLOG"}
    )
    return checks


@require_safe
def readyz(request):
    checks = readiness_checks()
    failing = [name for name, check in checks.items() if not check["ok"]]
    response = _json(
        {"status": "unavailable" if failing else "ok", "failing": failing, "checks": checks},
        status=503 if failing else 200,
    )
    if failing:
        # One warning naming the checks, instead of django.request's ERROR (and its e-mail to ADMINS) for every
        # probe: a load balancer asks every few seconds for as long as Redis is down.
        logger.warning("not ready: %s", ", ".join(f"{name} ({checks[name]['detail']})" for name in failing))
        response._has_been_logged = True  # what django.utils.log.log_response looks for
    return response


# --- metrics -----------------------------------------------------------------------------------------------------


def _bearer_token_valid(request) -> bool | None:
    """True or False for a request that sends a bearer token; None for one that sends none."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    expected = settings.METRICS_TOKEN
    # compare_digest takes as long whatever the first wrong character; an unset token matches nothing.
    return bool(expected) and hmac.compare_digest(token.strip().encode(), expected.encode())


def _unauthorized(status: int, text: str) -> HttpResponse:
    response = HttpResponse(text, status=status, content_type="text/plain; charset=utf-8")
    response["Cache-Control"] = NO_STORE
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
    return response


@require_safe
def metrics(request):
    bearer = _bearer_token_valid(request)
    if bearer is False:
        return _unauthorized(401, "The bearer token is not the metrics token.\n")
    if bearer is None:
        # Only now the session (a database read): a scraper with its token never touches the database here.
        if not request.user.is_authenticated:
            return _unauthorized(401, "Sign in as staff, or send Authorization: Bearer <METRICS_TOKEN>.\n")
        if not (request.user.is_active and request.user.is_staff):
            return _unauthorized(403, "Metrics are for staff.\n")
    # The format the scraper asks for (Prometheus's text format 0.0.4 by default, OpenMetrics if it says so).
    encode, content_type = choose_encoder(request.headers.get("Accept", ""))
    response = HttpResponse(encode(metrics_registry()), content_type=content_type)
    response["Cache-Control"] = NO_STORE
    response["Vary"] = "Accept, Authorization, Cookie"
    return response
