"""GET /api/v1/payments/{id}/status: the status URL handed out with every 202.

An async view: a long-poll (`?wait=N`) subscribes to the payment's Channels group before reading the database
(a change committed in between is not missed), wakes on the push, and re-reads the database every few seconds in
case a push was dropped; it holds no database connection while it waits.

It does hold a thread today. Some middlewares in front of it are sync-only (WhiteNoise's, and ours), so Django
runs the chain on a thread of the request's own (asgiref gives each request one) and calls this view from it;
that thread waits with the view. Threads, not a bounded pool: `make chaos` found no starvation from it. Making
every middleware async-capable (WhiteNoise included) would free them; not done yet.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.exceptions import APIException, AuthenticationFailed, NotAuthenticated, Throttled
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from infrastructure.problems import problem_fields_for, problem_json
from payments.api import docs
from payments.api.serializers import PaymentStatusDocument
from payments.api.throttling import ClientRateThrottle
from payments.api.views import PAYMENT_ID, payment_for_viewer
from payments.gateway import release_database_connection
from payments.links import links_absolute
from payments.models import Payment, PaymentStatus
from payments.realtime import payment_group_name
from payments.selectors import payment_status_document_read, payment_status_payload, status_etag

logger = logging.getLogger(__name__)
# How often a long-poll re-reads the database while it waits for a push.
RECHECK_SECONDS = 2.0


class PaymentStatusSchemaView(APIView):
    # Describes `payment_status` in the OpenAPI document (drf-spectacular reads DRF views only). A comment, not a
    # docstring: drf-spectacular would make a docstring the operation's description.

    @extend_schema(
        operation_id="payments_status",
        summary="The status URL: 202 until the payment is final, then 303 to it; long-poll it with ?wait=N",
        parameters=[PAYMENT_ID, docs.WAIT, docs.IF_NONE_MATCH, docs.ETAG, docs.RETRY_AFTER, docs.LOCATION],
        examples=[docs.STATUS_DOCUMENT_EXAMPLE, docs.DECLINED_EXAMPLE],
        responses={
            202: OpenApiResponse(
                PaymentStatusDocument,
                description="Not final yet: ask again (Location, the status URL itself) after Retry-After seconds.",
            ),
            303: OpenApiResponse(
                PaymentStatusDocument,
                description="Final: the payment is at Location (the body is its final status document).",
            ),
            304: OpenApiResponse(None, description="Unchanged since the ETag in If-None-Match."),
            400: docs.problem("wait must be a whole number of seconds from 0 to 30", "invalid_wait", 400),
            **docs.COMMON_ERRORS,
        },
    )
    def get(self, request, payment_id):  # pragma: no cover - never routed; payment_status answers
        raise NotImplementedError


def _authorize(django_request, payment_id) -> Payment:
    """As a DRF view does it: who is asking (401 for a wrong token), then their rate (429), then the payment.

    The database connection goes back at once: the request's thread would otherwise keep it until the answer,
    through a long-poll's whole wait, and a few dozen waiting long-polls then held every connection of the
    process's pool while the requests that pay queued for one (found by `make chaos`, docs/reliability.md)."""
    try:
        request = Request(django_request, authenticators=[cls() for cls in api_settings.DEFAULT_AUTHENTICATION_CLASSES])
        request.user  # noqa: B018 - authenticates now, so a wrong token is a 401 before the throttle asks who this is
        throttle = ClientRateThrottle()
        if not throttle.allow_request(request, None):
            raise Throttled(wait=throttle.wait())
        return payment_for_viewer(request, payment_id)
    finally:
        release_database_connection()


def _problem_for(exc: APIException, request):
    headers = {}
    if isinstance(exc, Throttled) and exc.wait:
        headers["Retry-After"] = str(math.ceil(exc.wait))
    if isinstance(exc, NotAuthenticated | AuthenticationFailed):
        exc.status_code = 401
        headers["WWW-Authenticate"] = "Token"
    return problem_json(
        status=exc.status_code, instance=request.get_full_path(), headers=headers, **problem_fields_for(exc)
    )


def _seq_from_if_none_match(header: str | None, payment_id) -> int | None:
    for tag in re.findall(r'"([^"]*)"', header or ""):
        owner, _, seq = tag.rpartition(".")
        if owner == str(payment_id) and re.fullmatch(r"[0-9]{1,9}", seq):
            return int(seq)
    return None


@database_sync_to_async
def _load_document(payment_id) -> dict:
    document = payment_status_document_read(payment_id)  # gives its connection back: the wait holds none
    if document is None:
        raise Payment.DoesNotExist(payment_id)  # authorized a moment ago; payments are never deleted
    return document


async def wait_for_change(payment_id, baseline_seq: int, timeout: float) -> dict:
    """The status document as soon as its seq differs from baseline_seq, or after `timeout` seconds."""
    layer = get_channel_layer()
    group = payment_group_name(payment_id)
    channel = None
    try:
        channel = await layer.new_channel("longpoll.")
        await layer.group_add(group, channel)
    except Exception:
        logger.warning("long-poll: channel layer unavailable, reading the database only", exc_info=True)
        channel = None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    receiver = None
    listening = channel is not None
    try:
        document = await _load_document(payment_id)
        while document["seq"] == baseline_seq and (remaining := deadline - loop.time()) > 0:
            if not listening:
                await asyncio.sleep(min(remaining, RECHECK_SECONDS))
                document = await _load_document(payment_id)
                continue
            receiver = receiver or asyncio.ensure_future(layer.receive(channel))
            done, _ = await asyncio.wait({receiver}, timeout=min(remaining, RECHECK_SECONDS))
            if not done:
                document = await _load_document(payment_id)
                continue
            finished, receiver = receiver, None
            try:
                message = finished.result()
            except Exception:
                # Redis went away mid-wait (restarted, paused past a timeout): the push was only a hint, the
                # database is the record; read it until the wait is over rather than answer 500.
                logger.warning("long-poll: channel layer failed mid-wait, reading the database only", exc_info=True)
                listening = False
                document = await _load_document(payment_id)
                continue
            pushed = message.get("payment") or {}
            if pushed.get("seq", 0) > baseline_seq:
                document = pushed
        return document
    finally:
        if receiver is not None:
            receiver.cancel()
        if channel is not None:
            try:
                await layer.group_discard(group, channel)
            except Exception:
                logger.debug("long-poll: could not leave %s", group, exc_info=True)


def retry_after_for(document: dict) -> int:
    """Seconds a poller should wait: longer while the shopper is at their bank (a human, tens of seconds) than
    while a worker has it (about a second)."""
    if document.get("status") == PaymentStatus.REQUIRES_ACTION:
        return settings.PAYMENTS_ACTION_POLL_INTERVAL
    return settings.PAYMENTS_POLL_INTERVAL


def _answer(request, document: dict, client_seq: int | None) -> HttpResponse:
    """The status URL's contract, the one azure-core's LocationPolling (and Durable Functions) follow: 202 with
    Retry-After while the payment is not final, so a poller knows to ask again and when; 303 See Other to the
    payment once it is (docs/api.md, "Following a payment")."""
    document = links_absolute(document, request)
    if document["has_outcome"]:
        response = JsonResponse(document, status=303)
        response["Location"] = document["links"]["self"]
    elif client_seq == document["seq"]:
        response = HttpResponse(status=304)
        del response["Content-Type"]  # a 304 has no body to describe
    else:
        response = JsonResponse(document, status=202)
        response["Location"] = document["links"]["status"]
        response["Retry-After"] = str(retry_after_for(document))
    response["ETag"] = status_etag(document["id"], document["seq"])
    response["Cache-Control"] = "private, no-cache"  # revalidate every time (ETag); never in a shared cache
    return response


# Exempt from the CSRF middleware, which would otherwise answer any other method with an HTML 403 before the
# view could say 405: the view only reads, and refuses every method but GET and HEAD before doing anything.
@csrf_exempt
async def payment_status(request, payment_id):
    if request.method not in ("GET", "HEAD"):
        return problem_json(
            status=405,
            code="method_not_allowed",
            detail=f'Method "{request.method}" not allowed: use GET.',
            instance=request.get_full_path(),
            headers={"Allow": "GET, HEAD"},
        )
    try:
        payment = await sync_to_async(_authorize)(request, payment_id)
    except APIException as exc:
        return _problem_for(exc, request)

    raw_wait = request.GET.get("wait")
    wait = 0
    if raw_wait is not None:
        if not re.fullmatch(r"[0-9]{1,3}", raw_wait) or int(raw_wait) > settings.PAYMENTS_MAX_LONG_POLL:
            return problem_json(
                status=400,
                code="invalid_wait",
                param="wait",
                instance=request.get_full_path(),
                detail=f"wait must be a whole number of seconds from 0 to {settings.PAYMENTS_MAX_LONG_POLL}.",
            )
        wait = int(raw_wait)

    client_seq = _seq_from_if_none_match(request.headers.get("If-None-Match"), payment.id)
    document = payment_status_payload(payment)
    baseline = client_seq if client_seq is not None else payment.seq
    if wait and not payment.has_outcome and document["seq"] == baseline:
        document = await wait_for_change(payment.id, baseline, wait)
    return _answer(request, document, client_seq)


# drf-spectacular documents a path through its callback's DRF view class.
payment_status.cls = PaymentStatusSchemaView
payment_status.initkwargs = {}
