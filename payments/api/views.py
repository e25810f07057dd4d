"""The public payments API (DRF). Each view checks who is asking, then calls one service or selector."""

from __future__ import annotations

import re

from django.conf import settings
from django.utils.dateparse import parse_datetime
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status as http
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import NotAuthenticated, NotFound, PermissionDenied, ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.permissions import SAFE_METHODS
from rest_framework.response import Response
from rest_framework.views import APIView

from infrastructure.problems import problem_response
from payments.api import docs
from payments.api.idempotent import IdempotentWrite, InvalidBody
from payments.api.serializers import (
    PaymentCreateSerializer,
    PaymentDocument,
    PaymentPage,
    PaymentStatusDocument,
    RefundCreateSerializer,
    RefundDocument,
    RefundList,
)
from payments.filters import PaymentFilter
from payments.gateway import GatewayError
from payments.guests import guest_id_from_session
from payments.links import links_absolute
from payments.models import Actor, Payment, Refund
from payments.selectors import (
    payment_detail_payload,
    payment_get_for_viewer,
    payment_list_for_owner,
    payment_status_payload,
    refund_payload,
)
from payments.services.cards import card_tokenize
from payments.services.dispatch import payments_backlog
from payments.services.payments import payment_cancel, payment_create
from payments.services.refunds import RefundNotAllowed, refund_create
from payments.services.transitions import TransitionNotAllowed

PAYMENT_ID = OpenApiParameter("payment_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The payment's id.")


def payment_for_viewer(request, payment_id) -> Payment:
    """The payment if this client owns it: 401 with no credentials at all, 404 for anyone else's payment."""
    user = request.user if request.user.is_authenticated else None
    guest_id = guest_id_from_session(request.session)
    if user is None and guest_id is None:
        raise NotAuthenticated()
    if user is None and request.method not in SAFE_METHODS:
        # A guest writes with their session cookie, so the write needs the page's CSRF token, as a
        # signed-in session's does (DRF checks those itself).
        SessionAuthentication().enforce_csrf(request)
    payment = payment_get_for_viewer(payment_id=payment_id, user=user, guest_id=guest_id)
    if payment is None:
        raise NotFound("No such payment.")
    return payment


def payment_for_refunder(user, payment_id) -> Payment:
    """Refunds are the merchant's: an API client (or staff user) holding `payments.refund_payment`, for the
    payments it created. Whoever paid may watch the payment but never refund it (403), and a merchant who
    guesses another's payment id learns nothing (404)."""
    if not user.has_perm("payments.refund_payment"):
        raise PermissionDenied("Refunds are made by the merchant; this client may not refund payments.")
    payment = Payment.objects.filter(pk=payment_id, owner_user=user).first()
    if payment is None:
        raise NotFound("No such payment.")
    return payment


def _require_user(request):
    if not request.user.is_authenticated:
        raise NotAuthenticated()
    return request.user


class PrivateAPIView(APIView):
    # Every answer of this API is one client's: payments, refunds, WebSocket tokens. No cache keeps it.
    # (A comment, not a docstring: drf-spectacular would make a docstring every operation's description.)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        response.setdefault("Cache-Control", "private, no-store")
        return response


class PaymentCursorPagination(CursorPagination):
    ordering = ("-created_at", "-id")
    page_size = 20
    max_page_size = 100
    page_size_query_param = "limit"

    def get_page_size(self, request):
        """DRF reads a limit it cannot use (`abc`, `0`, `1000`, empty) as the default or the maximum; like a bad
        filter, it is a 400 here, so a client learns it asked for something else than what it gets."""
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not re.fullmatch(r"[0-9]{1,3}", raw) or not 1 <= int(raw) <= self.max_page_size:
            raise ValidationError({self.page_size_query_param: [f"A whole number from 1 to {self.max_page_size}."]})
        return int(raw)

    def decode_cursor(self, request):
        """DRF hands a cursor's position to the query unchecked: a forged one ("p=2026") would be a 500. And it reads
        an empty cursor as the first page's: it is a bad cursor, like any other this API did not hand out."""
        if request.query_params.get(self.cursor_query_param) == "":
            raise NotFound(self.invalid_cursor_message)
        cursor = super().decode_cursor(request)
        if cursor is not None and cursor.position is not None:
            try:
                valid = parse_datetime(cursor.position) is not None
            except ValueError:
                valid = False
            if not valid:
                raise NotFound(self.invalid_cursor_message)
        return cursor


class PaymentsView(PrivateAPIView):
    # The list's filters (payments/filters.py): applied by django-filter's backend in get(), documented by
    # drf-spectacular from the same attributes.
    filter_backends = (DjangoFilterBackend,)
    filterset_class = PaymentFilter
    queryset = Payment.objects.none()  # for the schema's introspection only: get() reads through the selector

    @extend_schema(
        operation_id="payments_list",
        summary="List your payments",
        filters=True,  # the filterset's parameters (the page document is not a plain list spectacular detects)
        parameters=[
            OpenApiParameter(
                "cursor", {"type": "string", "minLength": 1}, description="From a page's `next` or `previous`."
            ),
            OpenApiParameter(
                "limit",
                {"type": "integer", "minimum": 1, "maximum": PaymentCursorPagination.max_page_size},
                description=f"Payments a page (default {PaymentCursorPagination.page_size}).",
            ),
        ],
        responses={
            200: PaymentPage,
            **docs.COMMON_ERRORS,
            **docs.NEGOTIATED,
            400: docs.problem(
                "A bad filter: empty, unreadable or not one of its values, or a limit that is not 1 to 100",
                "validation_error",
                400,
            ),
            404: docs.problem("A cursor this API did not hand out", "not_found", 404),
        },
    )
    def get(self, request):
        payments = payment_list_for_owner(owner_user=_require_user(request))
        for backend in self.filter_backends:
            payments = backend().filter_queryset(request, payments, self)
        paginator = PaymentCursorPagination()
        page = paginator.paginate_queryset(payments, request, view=self)
        return paginator.get_paginated_response([links_absolute(payment_status_payload(p), request) for p in page])

    @extend_schema(
        operation_id="payments_create",
        summary="Create a payment (202 Accepted: it is processed asynchronously)",
        request=PaymentCreateSerializer,
        parameters=[docs.IDEMPOTENCY_KEY, docs.LOCATION, docs.RETRY_AFTER, docs.REPLAYED],
        examples=[docs.CREATE_EXAMPLE, docs.STATUS_DOCUMENT_EXAMPLE],
        responses={
            202: OpenApiResponse(PaymentStatusDocument, description="Accepted: follow `Location` (the status URL)."),
            **docs.METHOD_ERRORS,
            **docs.NEGOTIATED,
            **docs.BODY_ERRORS,
            400: docs.problem(
                "Idempotency-Key missing or malformed, or a body that is not JSON (or nests too deeply)",
                "idempotency_key_missing",
                400,
            ),
            422: docs.problem("Invalid fields, or the key was used for another request", "validation_error", 422),
            503: docs.problem(
                "Too busy (queue backlog), the card vault is unreachable or the database is busy; nothing was created",
                "service_unavailable",
                503,
            ),
            403: docs.CSRF_FAILED,
        },
    )
    def post(self, request):
        user = _require_user(request)
        write = IdempotentWrite(request)
        early = write.start(PaymentCreateSerializer)
        if early is not None:
            return early
        backlog = payments_backlog()
        if backlog is not None and backlog > settings.PAYMENTS_MAX_BACKLOG:
            return problem_response(
                status=503,
                code="service_unavailable",
                headers={"Retry-After": "30"},
                detail="We are taking too many payments right now; nothing was created.",
            )
        data = write.data
        try:
            card = card_tokenize(data["card_details"])  # the card's number and CVC go to the vault, nowhere else
        except GatewayError:
            return problem_response(
                status=503,
                code="service_unavailable",
                headers={"Retry-After": "5"},
                detail="The card vault is unreachable; nothing was created. Retry with the same key.",
            )

        def create(key):
            payment = payment_create(
                amount=data["amount"],
                currency=data["currency"],
                card=card,
                actor=Actor.API,
                actor_user=user,
                owner_user=user,
                idempotency_key=key,
                description=data["description"],
                metadata=data["metadata"],
            )
            document = payment_status_payload(payment)
            headers = {"Location": document["links"]["status"], "Retry-After": str(settings.PAYMENTS_POLL_INTERVAL)}
            return http.HTTP_202_ACCEPTED, document, headers

        return write.commit(create)


class PaymentDetailView(PrivateAPIView):
    @extend_schema(
        operation_id="payments_retrieve",
        summary="A payment with its event timeline and refunds",
        parameters=[PAYMENT_ID],
        responses={200: PaymentDocument, **docs.COMMON_ERRORS, **docs.NEGOTIATED},
    )
    def get(self, request, payment_id):
        document = links_absolute(payment_detail_payload(payment_for_viewer(request, payment_id)), request)
        document["refunds"] = [links_absolute(refund, request) for refund in document["refunds"]]
        return Response(document)


class PaymentCancelView(PrivateAPIView):
    @extend_schema(
        operation_id="payments_cancel",
        summary="Cancel a payment that no worker has taken yet, or that waits for the cardholder's authentication",
        request=None,
        parameters=[PAYMENT_ID],
        responses={
            202: OpenApiResponse(
                PaymentStatusDocument,
                description="Canceled (it was still pending, or requires_action: the bank's authentication is voided).",
            ),
            **docs.COMMON_ERRORS,
            **docs.NEGOTIATED,
            **docs.BODY_ERRORS,
            400: docs.problem("A body that is not JSON (or nests too deeply)", "parse_error", 400),
            409: docs.problem("A worker is processing it: wait for its outcome", "payment_processing", 409),
            410: docs.problem("It already has an outcome", "payment_final", 410),
            422: docs.problem("A body was sent: cancel takes none", "validation_error", 422),
            403: docs.CSRF_FAILED,
        },
    )
    def post(self, request, payment_id):
        payment = payment_for_viewer(request, payment_id)
        # Reading the body applies the API's rules to it (JSON only: 415; too deep: 400; too large: 413), and a
        # body that says anything is refused rather than ignored: a client sending one meant something else.
        if request.data:
            raise InvalidBody({"non_field_errors": ["Cancel takes no body (or an empty JSON object)."]})
        try:
            payment = payment_cancel(
                payment_id=payment.pk,
                actor=Actor.API,
                actor_user=request.user if request.user.is_authenticated else None,
                reason="canceled by the client",
            )
        except TransitionNotAllowed as refused:
            if refused.obj.has_outcome:
                return problem_response(
                    status=410, code="payment_final", detail=f"The payment is {refused.obj.status}."
                )
            return problem_response(
                status=409,
                code="payment_processing",
                detail=f"The payment is {refused.obj.status}; it can no longer be canceled.",
            )
        return Response(links_absolute(payment_status_payload(payment), request), status=http.HTTP_202_ACCEPTED)


class PaymentRefundsView(PrivateAPIView):
    @extend_schema(
        operation_id="refunds_list",
        summary="A payment's refunds",
        parameters=[PAYMENT_ID],
        responses={200: RefundList, **docs.COMMON_ERRORS, **docs.NEGOTIATED},
    )
    def get(self, request, payment_id):
        payment = payment_for_viewer(request, payment_id)
        refunds = payment.refunds.select_related("payment")
        return Response({"results": [links_absolute(refund_payload(r), request) for r in refunds]})

    @extend_schema(
        operation_id="refunds_create",
        summary="Refund all or part of a payment (202 Accepted: it is processed asynchronously)",
        request=RefundCreateSerializer,
        parameters=[PAYMENT_ID, docs.IDEMPOTENCY_KEY, docs.LOCATION, docs.REPLAYED],
        responses={
            202: OpenApiResponse(RefundDocument, description="Accepted: follow `Location`."),
            **docs.COMMON_ERRORS,
            **docs.NEGOTIATED,
            **docs.BODY_ERRORS,
            400: docs.problem(
                "Idempotency-Key missing or malformed, or a body that is not JSON (or nests too deeply)",
                "idempotency_key_missing",
                400,
            ),
            409: docs.problem("The payment cannot be refunded in its state", "payment_not_refundable", 409),
            422: docs.problem("More than what is left to refund (or invalid fields)", "refund_exceeds_capture", 422),
            403: docs.REFUND_FORBIDDEN,
            503: docs.WRITE_DATABASE_BUSY,
        },
    )
    def post(self, request, payment_id):
        user = _require_user(request)
        payment = payment_for_refunder(user, payment_id)
        write = IdempotentWrite(request)
        early = write.start(RefundCreateSerializer)
        if early is not None:
            return early

        def create(key):
            refund = refund_create(
                payment_id=payment.pk, actor=Actor.API, requested_by=user, idempotency_key=key, **write.data
            )
            document = refund_payload(refund)
            return http.HTTP_202_ACCEPTED, document, {"Location": document["links"]["self"]}

        try:
            return write.commit(create)
        except RefundNotAllowed as refused:
            # A same-key request that won the race left nothing to refund: its answer is ours.
            answer = write.first_answer()
            if answer is not None:
                return answer
            status = 409 if refused.code == "payment_not_refundable" else 422
            return problem_response(status=status, code=refused.code, detail=refused.message)


class RefundDetailView(PrivateAPIView):
    @extend_schema(
        operation_id="refunds_retrieve",
        summary="A refund",
        parameters=[PAYMENT_ID, OpenApiParameter("refund_id", OpenApiTypes.UUID, OpenApiParameter.PATH)],
        responses={
            200: RefundDocument,
            **docs.COMMON_ERRORS,
            **docs.NEGOTIATED,
            404: docs.problem("No such payment, or no such refund of it, for this client", "not_found", 404),
        },
    )
    def get(self, request, payment_id, refund_id):
        payment = payment_for_viewer(request, payment_id)
        refund = Refund.objects.filter(pk=refund_id, payment=payment).select_related("payment").first()
        if refund is None:
            raise NotFound("No such refund.")
        return Response(links_absolute(refund_payload(refund), request))
