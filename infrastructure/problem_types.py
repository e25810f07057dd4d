"""Problem types (RFC 9457, section 4): every `code` a problem document carries has a page of its own, served by
the app at /problems/<code with dashes> (what it means, what to do), and the document's `type` is that page's
absolute URL. A code no one registered is answered with `about:blank` and the status's phrase as its title
(RFC 9457, section 4.2.1), never with a URL that leads nowhere.

The types any layer can answer (HTTP's, DRF's, this package's) are registered here; each app registers its own
from its AppConfig.ready(), so this package names none of them. tests/api/test_problem_types.py lists every code
the source can put in a problem and follows each one's `type`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from django.core.exceptions import DisallowedHost
from django.http import Http404
from django.shortcuts import render
from django.utils.deprecation import MiddlewareMixin
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_safe

# Where the pages are served (config/urls.py routes it); a problem's `type` is this path, made absolute.
PROBLEM_PAGES_PATH = "/problems/"
PROBLEM_CONTENT_TYPE = "application/problem+json"


@dataclass(frozen=True)
class ProblemType:
    code: str
    title: str  # the document's `title`: the same for every occurrence of the type (RFC 9457, section 3.1.3)
    statuses: tuple[int, ...]
    meaning: str
    what_to_do: str

    @property
    def slug(self) -> str:
        return self.code.replace("_", "-")

    @property
    def path(self) -> str:
        return f"{PROBLEM_PAGES_PATH}{self.slug}"


_REGISTRY: dict[str, ProblemType] = {}


def problem_types_register(*types: ProblemType) -> None:
    for problem_type in types:
        _REGISTRY[problem_type.code] = problem_type


def problem_type_get(code: str) -> ProblemType | None:
    return _REGISTRY.get(code)


def problem_types_all() -> list[ProblemType]:
    return sorted(_REGISTRY.values(), key=lambda problem_type: (problem_type.statuses, problem_type.code))


RETRY_WITH_THE_KEY = "A write sent with an Idempotency-Key is safe to send again with the same key."

problem_types_register(
    ProblemType(
        "bad_request",
        "Unreadable request",
        (400,),
        "The request could not be read: its body broke off, or it is not HTTP the server understands.",
        f"Send the request again, whole. {RETRY_WITH_THE_KEY}",
    ),
    ProblemType(
        "parse_error",
        "Malformed JSON",
        (400,),
        "The body is not valid JSON, or it nests lists and objects more than 32 levels deep.",
        "Send one JSON object, encoded in UTF-8, with Content-Type: application/json. Nothing was created.",
    ),
    ProblemType(
        "validation_error",
        "Invalid fields",
        (422, 400),
        "422: the body is well-formed JSON, but some of its fields are missing, of the wrong JSON type (a string "
        "amount, say) or out of range. 400: a query parameter (a filter of the payment list) is empty or "
        "unreadable. `errors` lists every field's messages, nested like the request; `param` names the first.",
        "Fix the fields named in `errors` and send the request again. Nothing was created and an Idempotency-Key "
        "sent with it is not used up: send the corrected body with the same key.",
    ),
    ProblemType(
        "not_authenticated",
        "Credentials missing",
        (401,),
        "The request carries no credentials.",
        "Send `Authorization: Token <key>` (a shop page uses its session instead).",
    ),
    ProblemType(
        "authentication_failed",
        "Wrong credentials",
        (401,),
        "The token sent is not one the server knows.",
        "Check the token. Do not retry it in a loop: wrong tokens are counted per address, and past the limit "
        "every token from that address is refused for a while (429).",
    ),
    ProblemType(
        "permission_denied",
        "Not allowed",
        (403,),
        "This client may not do this: refunds need the refund permission, and a POST made with a browser session "
        "needs its CSRF token.",
        "Use a client that holds the permission, or send the `csrftoken` cookie's value in `X-CSRFToken`.",
    ),
    ProblemType(
        "not_found",
        "Not found",
        (404,),
        "There is no such resource for this client: another client's payment is not found either, a path the "
        "API does not have, or a list cursor that was not handed out.",
        "Check the id, and follow the URLs the API gives you (`links`, `Location`, `next`) rather than building them.",
    ),
    ProblemType(
        "method_not_allowed",
        "Method not allowed",
        (405,),
        "This URL does not take this method.",
        "Use one of the methods the `Allow` header lists.",
    ),
    ProblemType(
        "not_acceptable",
        "No acceptable answer",
        (406,),
        "The `Accept` header asks only for media types this URL cannot answer with.",
        "Accept application/json (or send no Accept header).",
    ),
    ProblemType(
        "payload_too_large",
        "Body too large",
        (413,),
        "The body is larger than the server reads (2.5 MB).",
        "Send a smaller body: no request of this API needs more than a few kilobytes.",
    ),
    ProblemType(
        "unsupported_media_type",
        "Body not JSON",
        (415,),
        "The body's Content-Type is not application/json (a form or multipart body included).",
        "Send the body as JSON with `Content-Type: application/json`.",
    ),
    ProblemType(
        "throttled",
        "Too many requests",
        (429,),
        "This client sent more requests than its rate allows, or its address sent too many wrong tokens.",
        "Wait the `Retry-After` seconds, then continue. To wait for a payment, long-poll (`?wait=25`): one request "
        "however long it is held.",
    ),
    ProblemType(
        "server_error",
        "Server error",
        (500,),
        "An unexpected error on the server's side; it has been logged. Nothing the request wrote was kept.",
        "Do not retry it automatically: a request that met a bug fails the same way until it is fixed. Contact "
        "support if it persists.",
    ),
    ProblemType(
        "service_unavailable",
        "Temporarily unavailable",
        (503,),
        "The server cannot take the request right now: too many payments are queued, the card vault is "
        "unreachable, or the database is busy. Nothing was created.",
        f"Wait the `Retry-After` seconds and send it again. {RETRY_WITH_THE_KEY}",
    ),
)


class ProblemTypeMiddleware(MiddlewareMixin):
    """Makes every problem document's `type` an absolute URL on the origin the client is talking to.

    A problem is built in many places (DRF's exception handler, the views, the async status view, the error
    handlers, the busy-database middleware), most of which have no request at hand; they write the page's
    path, and this one place, which sees every answer, resolves it against the request."""

    def process_response(self, request, response):
        if response.streaming or response.get("Content-Type", "").split(";")[0].strip() != PROBLEM_CONTENT_TYPE:
            return response
        try:
            body = json.loads(response.content)
        except ValueError:
            return response
        if not isinstance(body, dict) or not str(body.get("type", "")).startswith(PROBLEM_PAGES_PATH):
            return response
        try:
            body["type"] = request.build_absolute_uri(body["type"])
        except DisallowedHost:
            return response  # a Host we do not serve: the path alone is still a valid URI reference
        # ASCII: a document may echo what the client sent (a refused key), lone surrogates included, which UTF-8
        # cannot encode; escaped, any string is valid JSON.
        response.content = json.dumps(body, separators=(",", ":")).encode()
        if response.has_header("Content-Length"):
            response["Content-Length"] = str(len(response.content))
        return response


def _with_code(text: str) -> SafeString:
    """The texts mark names with backticks (`Retry-After`), as docs/api.md does; the page shows them as code."""
    return mark_safe(re.sub(r"`([^`]+)`", r"<code>\1</code>", escape(text)))  # noqa: S308 - escaped first


@require_safe
def problem_types_page(request):
    return render(request, "problems/index.html", {"problem_types": problem_types_all()})


@require_safe
def problem_type_page(request, slug: str):
    problem_type = problem_type_get(slug.replace("-", "_")) if "_" not in slug else None
    if problem_type is None:
        raise Http404("No such problem type.")
    context = {
        "problem_type": problem_type,
        "meaning": _with_code(problem_type.meaning),
        "what_to_do": _with_code(problem_type.what_to_do),
    }
    return render(request, "problems/type.html", context)
