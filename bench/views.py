"""Bench-only endpoints: the references that scenarios 1, 3 and 5 measure the product against.

Routed only by the bench's own URLconf (bench/urls.py, under bench/settings.py). They reuse the product's own
pieces so that each comparison differs from POST /api/v1/payments in one thing only.
"""

from __future__ import annotations

import uuid

from rest_framework import status as http
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from bench.jobs import floor_status_document
from payments.api.views import PaymentsView
from payments.models import Actor
from payments.selectors import payment_status_payload
from payments.services.dispatch import job_options, payments_queue
from payments.services.payments import payment_process

FLOOR_JOB = "bench.jobs.floor_job"


class CeilingView(APIView):
    """Scenario 1's ceiling: a trivial authenticated DRF endpoint on the same server and settings.

    Same authentication (token; anonymous: 401), throttling, JSON parser and renderer as the accept path, and
    the same body is parsed; nothing else happens. What the accept path does beyond this is its own cost.
    """

    permission_classes = [IsAuthenticated]

    def post(self, request):
        body = request.data  # parsed like the accept path's body
        return Response({"ok": True, "fields": len(body)}, status=http.HTTP_200_OK)


class SyncPaymentView(PaymentsView):
    """Scenario 3: the design the story argues against. The accept path, then the bank call inline.

    POST /api/v1/payments verbatim (the product's own view: auth, throttle, Idempotency-Key, validation,
    load shedding, tokenize, record, queue), then what a worker does (risk checks, pending → processing, the
    gateway's charge with SANDBOX_LATENCY_MS, the outcome) inside the same request, which answers 200 with
    the final status document. The job the accept path queued is never run (no worker runs during scenario
    3 and the harness empties the queue afterwards); queueing it costs about a millisecond against the
    gateway's 2 s. A replay of the Idempotency-Key would answer the stored 202: the bench never replays.
    """

    def post(self, request):
        accepted = super().post(request)
        if accepted.status_code != http.HTTP_202_ACCEPTED:
            return accepted
        # The bank call, inline: payment_process holds no transaction across it.
        payment = payment_process(payment_id=accepted.data["id"], actor=Actor.API)
        return Response(payment_status_payload(payment), status=http.HTTP_200_OK)


class FloorView(APIView):
    """Scenario 5's floor: the shopper's sequence (POST → 202 → WebSocket → outcome frame) with no work in it.

    The ceiling view's request (same authentication, throttle, parser and renderer, the body parsed), then
    one job enqueued on the payments queue with the options a payment's job gets
    (payments/services/dispatch.py, `job_options`), answering 202 with where to wait: the bench's floor socket
    (bench/consumers.py), which the job (bench.jobs.floor_job) pushes to.
    """

    permission_classes = [IsAuthenticated]

    def post(self, request):
        body = request.data  # parsed like the accept path's body
        floor_id = str(uuid.uuid4())
        payments_queue().enqueue(FLOOR_JOB, floor_id, **job_options(FLOOR_JOB, floor_id, job_id=f"floor-{floor_id}"))
        document = {
            **floor_status_document(floor_id),
            "status": "pending",
            "has_outcome": False,
            "fields": len(body),
            "links": {"websocket": f"/ws/bench/floor/{floor_id}"},
        }
        return Response(document, status=http.HTTP_202_ACCEPTED)
