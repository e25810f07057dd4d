"""Error pages: the API answers problem+json for every error, even the ones Django raises before any view."""

from django.core.exceptions import RequestDataTooBig
from django.views import defaults

from infrastructure.problems import problem_json


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


def not_found(request, exception=None):
    if _is_api(request):
        return problem_json(status=404, code="not_found", detail="No such resource.", instance=request.path)
    return defaults.page_not_found(request, exception)


def server_error(request):
    if _is_api(request):
        # No Retry-After and no "retry": a request that met a bug fails the same way every time, and a client
        # told to retry would only hammer it.
        return problem_json(
            status=500,
            code="server_error",
            instance=request.path,
            detail=(
                "An unexpected error on our side; it has been logged. Retrying the same request is unlikely to "
                "help until it is fixed: do not retry it automatically, and contact support if it persists."
            ),
        )
    return defaults.server_error(request)


def bad_request(request, exception=None):
    if _is_api(request):
        if isinstance(exception, RequestDataTooBig):
            return problem_json(
                status=413, code="payload_too_large", detail="The request body is too large.", instance=request.path
            )
        return problem_json(
            status=400, code="bad_request", detail="The request could not be understood.", instance=request.path
        )
    return defaults.bad_request(request, exception)
