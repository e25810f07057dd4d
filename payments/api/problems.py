"""RFC 9457 problem details: every API error is application/problem+json with a stable `code`."""

from __future__ import annotations

from http import HTTPStatus

from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://docs.checkout.example/problems/"


def problem_response(
    *, status: int, code: str, detail: str = "", title: str = "", instance: str = "", **extra
) -> Response:
    body = {
        "type": PROBLEM_TYPE_BASE + code.replace("_", "-"),
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if instance:
        body["instance"] = instance
    body.update(extra)
    return Response(body, status=status, content_type=PROBLEM_CONTENT_TYPE)


def problem_exception_handler(exc, context):
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    request = context.get("request")
    instance = request.get_full_path() if request is not None else ""
    if isinstance(exc, exceptions.ValidationError):
        problem = problem_response(
            status=response.status_code,
            code="validation_error",
            instance=instance,
            detail="The request has invalid fields.",
            errors=response.data,
        )
    else:
        code = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
        problem = problem_response(
            status=response.status_code,
            code=code if isinstance(code, str) else "error",
            detail=str(getattr(exc, "detail", "")),
            instance=instance,
        )
    for header, value in response.headers.items():
        if header.lower() in ("retry-after", "www-authenticate", "allow"):
            problem[header] = value
    return problem
