"""OpenAPI pieces shared by the payment endpoints: headers, problem responses, examples."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse

from infrastructure.problem_types import problem_type_get
from infrastructure.problems import PROBLEM_CONTENT_TYPE
from payments.api.serializers import ProblemDocument
from payments.services.idempotency import IDEMPOTENCY_KEY_MAX_HEADER_LENGTH, IDEMPOTENCY_KEY_PATTERN, MAX_KEY_LENGTH

IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    {
        "type": "string",
        "minLength": 1,
        "maxLength": IDEMPOTENCY_KEY_MAX_HEADER_LENGTH,
        "pattern": IDEMPOTENCY_KEY_PATTERN,
    },
    OpenApiParameter.HEADER,
    required=True,
    description=(
        f"A key of 1 to {MAX_KEY_LENGTH} printable ASCII characters, sent bare (`order-1042`) or as the IETF "
        'draft\'s quoted string (`"8e03978e-…"`, with `\\"` and `\\\\` its only escapes; `"k"` and `k` are one '
        "key). Only a quoted key's quotes and escapes make the header longer than the key. Anything else is a 400 "
        "(`idempotency_key_missing`). Same key and same body: the first response is replayed with "
        "`Idempotent-Replayed: true`. Same key, other body: 422. Same key while the first request is mid-write: "
        "it waits for it, and answers 503 if that takes past the database's lock timeout. Answers are kept 24 "
        "hours, keys for good, per client."
    ),
)
LOCATION = OpenApiParameter(
    "Location",
    str,
    OpenApiParameter.HEADER,
    response=[202, 303],
    description=(
        "An absolute URL. A create's 202: what to follow (a payment's status URL; a refund itself). The status "
        "URL's 202: itself, to ask again after Retry-After. Its 303: the payment."
    ),
)
RETRY_AFTER = OpenApiParameter(
    "Retry-After",
    OpenApiTypes.INT,
    OpenApiParameter.HEADER,
    response=[202, 429, 503],
    description="Seconds to wait before asking again.",
)
REPLAYED = OpenApiParameter(
    "Idempotent-Replayed",
    str,
    OpenApiParameter.HEADER,
    response=[202],
    description="`true` when this is the stored response to an earlier request with the key.",
)
ETAG = OpenApiParameter(
    "ETag", str, OpenApiParameter.HEADER, response=[202, 303, 304], description="The status document's version."
)
IF_NONE_MATCH = OpenApiParameter(
    "If-None-Match", str, OpenApiParameter.HEADER, description="An ETag from an earlier answer: 304 if nothing changed."
)
WAIT = OpenApiParameter(
    "wait",
    {"type": "integer", "minimum": 0, "maximum": 30},
    OpenApiParameter.QUERY,
    description="Long-poll: hold the request up to this many seconds (at most 30) until the status changes.",
)


# The origin examples are shown on (`make run`'s); a real `type` is on the origin the client talks to.
EXAMPLE_ORIGIN = "http://localhost:8000"


def problem(description: str, code: str, status: int) -> OpenApiResponse:
    problem_type = problem_type_get(code)
    if problem_type is None:  # the example would show a `type` the server never sends
        raise LookupError(f"No problem type {code!r} is registered (infrastructure/problem_types.py)")
    return OpenApiResponse(
        ProblemDocument,
        description=f"{description} (`application/problem+json`, code `{code}`)",
        examples=[
            OpenApiExample(
                code,
                response_only=True,
                status_codes=[str(status)],
                value={
                    "type": EXAMPLE_ORIGIN + problem_type.path,
                    "title": problem_type.title,
                    "status": status,
                    "detail": description,
                    "code": code,
                },
            )
        ],
    )


CSRF_FAILED = problem("A signed-in or guest browser session must send its CSRF token", "permission_denied", 403)
REFUND_FORBIDDEN = problem(
    "Refunds are the merchant's: this client lacks payments.refund_payment (or a browser session sent no CSRF token)",
    "permission_denied",
    403,
)
WRITE_DATABASE_BUSY = problem(
    "The database is busy (another request with this key may be mid-write); nothing was created: retry with the key",
    "service_unavailable",
    503,
)
UNAUTHENTICATED = problem(
    "Not signed in (send `Authorization: Token <key>`), or a wrong token", "not_authenticated", 401
)
NOT_FOUND = problem("No such payment for this client", "not_found", 404)
THROTTLED = problem(
    "Too many requests, or too many wrong tokens from this address: wait Retry-After seconds", "throttled", 429
)
METHOD_NOT_ALLOWED = problem(
    "Not a method of this path: the Allow header lists those it takes", "method_not_allowed", 405
)
NOT_ACCEPTABLE = problem(
    "The Accept header (or `?format=`) does not allow `application/json`, the one representation", "not_acceptable", 406
)
UNSUPPORTED_MEDIA_TYPE = problem("A body that is not `application/json`", "unsupported_media_type", 415)
PAYLOAD_TOO_LARGE = problem("A body over 2.5 MB", "payload_too_large", 413)
DATABASE_BUSY = problem(
    "The database is busy (a lock or statement timeout): retry after Retry-After seconds", "service_unavailable", 503
)
# What any operation may answer, the status URL's included: who is asking (401), whose payment (404), the method
# (405, any other on the path), the client's rate (429), the database (503). Each view adds what is its own.
COMMON_ERRORS = {
    401: UNAUTHENTICATED,
    404: NOT_FOUND,
    405: METHOD_NOT_ALLOWED,
    429: THROTTLED,
    503: DATABASE_BUSY,
}
# An operation on no payment (create): as above, without the 404.
METHOD_ERRORS = {status: response for status, response in COMMON_ERRORS.items() if status != 404}
# DRF's views negotiate the answer's type (the status URL does not: it answers JSON whatever Accept says).
NEGOTIATED = {406: NOT_ACCEPTABLE}
# Operations that read a JSON body (a body that is not JSON, or nests too deeply, is their 400).
BODY_ERRORS = {413: PAYLOAD_TOO_LARGE, 415: UNSUPPORTED_MEDIA_TYPE}

CREATE_EXAMPLE = OpenApiExample(
    "A Visa test card",
    request_only=True,
    value={
        "amount": 2400,
        "currency": "USD",
        "description": "Order 1042",
        "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"},
        "metadata": {"order_id": "1042"},
    },
)

STATUS_DOCUMENT_EXAMPLE = OpenApiExample(
    "A payment being processed",
    response_only=True,
    status_codes=["202"],
    value={
        "id": "5d0f1c1e-8f1a-4f55-9d7e-3c2a9b1e7f10",
        "status": "processing",
        "has_outcome": False,
        "amount": 2400,
        "amount_refunded": 0,
        "currency": "USD",
        "card": {"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2030},
        "failure": None,
        "seq": 2,
        "created_at": "2026-11-24T10:00:00.000000+00:00",
        "updated_at": "2026-11-24T10:00:00.120000+00:00",
        "links": {
            "self": "https://shop.example.com/api/v1/payments/5d0f1c1e-8f1a-4f55-9d7e-3c2a9b1e7f10",
            "status": "https://shop.example.com/api/v1/payments/5d0f1c1e-8f1a-4f55-9d7e-3c2a9b1e7f10/status",
            "cancel": "https://shop.example.com/api/v1/payments/5d0f1c1e-8f1a-4f55-9d7e-3c2a9b1e7f10/cancel",
            "refunds": "https://shop.example.com/api/v1/payments/5d0f1c1e-8f1a-4f55-9d7e-3c2a9b1e7f10/refunds",
            "websocket": "wss://shop.example.com/ws/payments/5d0f1c1e-8f1a-4f55-9d7e-3c2a9b1e7f10?token=eyJwIjoi…",
        },
    },
)
DECLINED_EXAMPLE = OpenApiExample(
    "A declined payment",
    response_only=True,
    status_codes=["303"],
    value={
        "id": "5d0f1c1e-8f1a-4f55-9d7e-3c2a9b1e7f10",
        "status": "failed",
        "has_outcome": True,
        "amount": 2400,
        "amount_refunded": 0,
        "currency": "USD",
        "card": {"brand": "visa", "last4": "0002", "exp_month": 12, "exp_year": 2030},
        "failure": {
            "code": "card_declined",
            "decline_code": "insufficient_funds",
            "message": "Your card has insufficient funds.",
        },
        "seq": 3,
        "created_at": "2026-11-24T10:00:00.000000+00:00",
        "updated_at": "2026-11-24T10:00:01.020000+00:00",
        "links": {
            "self": "https://shop.example.com/api/v1/payments/5d0f…",
            "status": "https://shop.example.com/api/v1/payments/5d0f…/status",
            "cancel": "https://shop.example.com/api/v1/payments/5d0f…/cancel",
            "refunds": "https://shop.example.com/api/v1/payments/5d0f…/refunds",
            "websocket": "wss://shop.example.com/ws/payments/5d0f…?token=…",
        },
    },
)


# The headers an error answer carries, whichever view sent it: a 405 names the methods the path takes, a 429 or a
# 503 says when to ask again.
ERROR_HEADERS = {
    "405": {"Allow": {"schema": {"type": "string"}, "description": "The methods this path takes."}},
    "429": {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait before asking again."}},
    "503": {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait before asking again."}},
}


def problem_responses_hook(result, generator, request, public):
    """Every error this API sends is application/problem+json, with the headers its status implies; say so."""
    for path in result.get("paths", {}).values():
        for operation in path.values():
            for status, response in operation.get("responses", {}).items():
                if status[:1] in "45" and response.get("content"):
                    response["content"] = {PROBLEM_CONTENT_TYPE: next(iter(response["content"].values()))}
                for name, header in ERROR_HEADERS.get(status, {}).items():
                    response.setdefault("headers", {}).setdefault(name, header)
    return result
