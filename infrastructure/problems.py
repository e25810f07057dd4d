"""RFC 9457 problem details: every API error is application/problem+json with a stable `code`."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, JsonResponse, UnreadablePostError
from rest_framework import exceptions
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from infrastructure.problem_types import PROBLEM_CONTENT_TYPE, problem_type_get
from infrastructure.reason_phrases import reason_phrase

# Headers an error response keeps from the exception DRF raised.
KEPT_HEADERS = ("retry-after", "www-authenticate", "allow")


def problem_body(*, status: int, code: str, detail: str = "", title: str = "", instance: str = "", **extra) -> dict:
    """`type` is the path of the problem type's page (infrastructure/problem_types.py), which ProblemTypeMiddleware
    makes absolute on the way out; a code with no page is `about:blank`, titled with the status's phrase."""
    problem_type = problem_type_get(code)
    body = {
        "type": problem_type.path if problem_type is not None else "about:blank",
        "title": title or (problem_type.title if problem_type is not None else reason_phrase(status)),
        "status": status,
        "detail": detail,
        "code": code,
    }
    if instance:
        body["instance"] = instance
    body.update(extra)
    return body


class ProblemResponse(Response):
    """A problem document is JSON whatever the view renders otherwise: the schema view's YAML would be sent as
    application/problem+json, and Swagger UI's HTML renderer would send only "401 Unauthorized"."""

    @property
    def rendered_content(self):
        self.accepted_renderer = JSONRenderer()
        self.accepted_media_type = PROBLEM_CONTENT_TYPE
        return super().rendered_content


def problem_response(*, status: int, code: str, headers: dict | None = None, **fields) -> Response:
    """For DRF views."""
    return ProblemResponse(
        problem_body(status=status, code=code, **fields),
        status=status,
        content_type=PROBLEM_CONTENT_TYPE,
        headers=headers,
    )


def problem_json(*, status: int, code: str, headers: dict | None = None, **fields) -> JsonResponse:
    """For plain Django views (the async status view, the API's 404/500 handlers)."""
    response = JsonResponse(
        problem_body(status=status, code=code, **fields), status=status, content_type=PROBLEM_CONTENT_TYPE
    )
    for name, value in (headers or {}).items():
        response[name] = value
    return response


class PayloadTooLarge(exceptions.APIException):
    status_code = 413
    default_detail = "The request body is too large."
    default_code = "payload_too_large"


def as_api_exception(exc: Exception) -> Exception:
    """What Django raises while a view reads the body, as the 4xx problem it is (DRF leaves it to Django: a
    bare 400 page, under DEBUG an HTML one); and Django's own 404 and 403, as DRF's handler reads them (it
    answers them, but their problem's fields are read from the exception: Django's have no codes)."""
    if isinstance(exc, Http404):
        return exceptions.NotFound(*exc.args)
    if isinstance(exc, DjangoPermissionDenied):
        return exceptions.PermissionDenied(*exc.args)
    if isinstance(exc, RequestDataTooBig):
        return PayloadTooLarge(f"The request body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes.")
    if isinstance(exc, UnreadablePostError):
        return exceptions.ParseError("The request body could not be read.", code="bad_request")
    return exc


def _first_error_path(errors, prefix: str = "") -> str:
    if isinstance(errors, dict):
        for name, value in errors.items():
            return _first_error_path(value, f"{prefix}.{name}" if prefix else str(name))
    return prefix


def problem_fields_for(exc: exceptions.APIException) -> dict:
    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        return {
            "code": "validation_error",
            "detail": "The request has invalid fields; see errors.",
            "param": _first_error_path(detail) or None,
            "errors": detail,
        }
    codes = exc.get_codes()
    return {"code": codes if isinstance(codes, str) else "error", "detail": str(exc.detail)}


def problem_exception_handler(exc, context):
    exc = as_api_exception(exc)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # not an API exception: a 500, answered by infrastructure.errors as problem+json
    request = context.get("request")
    problem = problem_response(
        status=response.status_code,
        instance=request.get_full_path() if request is not None else "",
        **problem_fields_for(exc),
    )
    for header, value in response.headers.items():
        if header.lower() in KEPT_HEADERS:
            problem[header] = value
    return problem
