"""The reason phrase of every status this server answers, as RFC 9110 names them: one table for daphne's status
line (infrastructure/overrides/daphne.py), Django's (WSGI, and its request log) and a problem's `title` when it
has no type of its own."""

from __future__ import annotations

from http import HTTPStatus

# RFC 9110 (section 15) renamed these. Python before 3.13 still has the older names, and Twisted, which writes
# daphne's status line, has none at all for 422 and 429: daphne sent "HTTP/1.1 422 Unknown Status".
RFC_9110_NAMES = {
    413: "Content Too Large",
    414: "URI Too Long",
    416: "Range Not Satisfiable",
    422: "Unprocessable Content",
}


def reason_phrase(status: int) -> str:
    if status in RFC_9110_NAMES:
        return RFC_9110_NAMES[status]
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown Status"  # a code no table names (the application never sends one)
