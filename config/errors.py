"""Error pages: the API answers problem+json for every error, even the ones Django raises before any view."""

from django.views import defaults

from payments.api.problems import problem_json


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


def not_found(request, exception=None):
    if _is_api(request):
        return problem_json(status=404, code="not_found", detail="No such resource.", instance=request.path)
    return defaults.page_not_found(request, exception)


def server_error(request):
    if _is_api(request):
        return problem_json(
            status=500,
            code="server_error",
            instance=request.path,
            detail="Something went wrong on our side. Nothing was lost: retry with the same Idempotency-Key.",
        )
    return defaults.server_error(request)


def bad_request(request, exception=None):
    if _is_api(request):
        return problem_json(status=400, code="bad_request", detail="The request could not be understood.")
    return defaults.bad_request(request, exception)
