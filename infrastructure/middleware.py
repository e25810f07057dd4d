"""A database that is busy is not a bug: a lock wait or a statement past its timeout, or a lost connection,
answers 503 with Retry-After (problem+json on the API, a page elsewhere) and one log line, wherever in the
request it happens (authentication, a lookup, a write). Views that can say more (the checkout's submit, an
API write that knows nothing was created) catch it themselves first.

Every answer's reason phrase is RFC 9110's (infrastructure/reason_phrases.py), and every request has an id, in
each of its log lines and in its answer's X-Request-ID (infrastructure/logs.py)."""

from __future__ import annotations

import contextvars
import logging
from http import HTTPStatus

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.db import OperationalError
from django.http import HttpResponse
from django.template.loader import render_to_string
from django.urls import resolve
from django.utils.deprecation import MiddlewareMixin
from structlog.contextvars import bind_contextvars, reset_contextvars

from infrastructure.logs import REQUEST_ID_HEADER, request_id_accept
from infrastructure.problems import problem_json
from infrastructure.reason_phrases import RFC_9110_NAMES

logger = logging.getLogger(__name__)
RETRY_AFTER_SECONDS = "2"


def database_busy_response(request, exception: OperationalError):
    cause = exception.__cause__ or exception
    logger.warning("database busy: %s %s (%s)", request.method, request.path, type(cause).__name__)
    # The API, and any client that asked for JSON (the checkout form sent by a script, Accept: application/json),
    # gets the problem document a client can act on; a browser gets the page.
    if request.path.startswith("/api/") or "application/json" in request.headers.get("Accept", ""):
        return problem_json(
            status=503,
            code="service_unavailable",
            instance=request.path,
            headers={"Retry-After": RETRY_AFTER_SECONDS},
            detail=(
                "The database is busy right now. Retry after Retry-After seconds; a write sent with an "
                "Idempotency-Key is safe to retry with the same key."
            ),
        )
    # Rendered without the request's context processors: they read the session (the cart's count) from the
    # database that has just failed, and a second failure there turned the 503 into a 500 (make chaos, CI).
    response = HttpResponse(render_to_string("503.html", {"request": request}), status=503)
    response["Retry-After"] = RETRY_AFTER_SECONDS
    return response


class DatabaseBusyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, OperationalError):
            return None
        return database_busy_response(request, exception)


class ReasonPhraseMiddleware(MiddlewareMixin):
    """Django takes a response's reason phrase from Python's table, which before Python 3.13 names 422
    "Unprocessable Entity": what a WSGI server (config/wsgi.py) puts in the status line and Django's request log
    writes. RFC 9110's names instead, as daphne's status line has them; a phrase a view set itself is kept.
    (Under daphne the ASGI response carries no phrase: infrastructure/overrides/daphne.py sets daphne's.)"""

    def process_response(self, request, response):
        status = response.status_code
        if status in RFC_9110_NAMES and response.reason_phrase == HTTPStatus(status).phrase:
            response.reason_phrase = RFC_9110_NAMES[status]
        return response


class ProbeMiddleware:
    """Answers the health probes (settings.PROBE_PATHS, exact paths, GET and HEAD) ahead of every middleware below.

    A load balancer asks each instance by its address (a Host that ALLOWED_HOSTS refuses: 400), over plain HTTP
    (SECURE_SSL_REDIRECT: 301), with no cookie; and a probe must not read a session or wait on a busy database
    before its view decides what to say. The probe's view comes from the URLconf as usual; only the middleware
    below this one is skipped. Safe because a probe's answer names no host and carries no link: the Host header is
    never read. (django-alive places its middleware before SecurityMiddleware for the same reasons.)"""

    def __init__(self, get_response):
        self.get_response = get_response
        self.paths = frozenset(settings.PROBE_PATHS)

    def __call__(self, request):
        if request.path_info in self.paths and request.method in ("GET", "HEAD"):
            match = resolve(request.path_info)
            return match.func(request, *match.args, **match.kwargs)
        return self.get_response(request)


class RequestIdMiddleware:
    """Gives the request an id (the client's X-Request-ID when it is well formed, else a new one), binds it to
    every log line written while the request is served (a job it queues carries it on, payments/services/
    dispatch.py) and answers it in X-Request-ID, which daphne's access log line shows too.

    Nothing bound while a request is served outlives it. Synchronously (WSGI, the test client) the request runs in
    a copy of the caller's context, so whatever it binds (its id, the payment it creates) is gone when it returns,
    though the thread serves the next request. Under daphne the chain is asynchronous, each request an asyncio
    task of its own whose context is its own; its sync parts run on threads with a copy of it."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request):
        if iscoroutinefunction(self):
            return self._serve_async(request)
        request.request_id = request_id_accept(request.headers.get(REQUEST_ID_HEADER))
        response = contextvars.copy_context().run(self._serve, request)
        response[REQUEST_ID_HEADER] = request.request_id
        return response

    def _serve(self, request):
        bind_contextvars(request_id=request.request_id)
        return self.get_response(request)

    async def _serve_async(self, request):
        request.request_id = request_id_accept(request.headers.get(REQUEST_ID_HEADER))
        tokens = bind_contextvars(request_id=request.request_id)
        try:
            response = await self.get_response(request)
        finally:
            reset_contextvars(**tokens)
        response[REQUEST_ID_HEADER] = request.request_id
        return response
