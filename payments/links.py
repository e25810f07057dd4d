"""The URLs a client is handed (`links.*`, `Location`), absolute for the request that asked.

The status document is built once, with no request at hand (a worker's transition builds the one the push
sends), so its links are paths. Every HTTP answer resolves them against the URL the client reached us by:
clients that follow a `Location` as given (azure-core's poller, many generated clients) need a scheme and a
host, and RFC 9110 allows relative references but does not oblige anyone to resolve them.

Scheme and host are Django's `request.build_absolute_uri`: the scheme is `https` when the request came over
TLS, or through a TLS proxy we were told to trust (`DJANGO_BEHIND_TLS_PROXY` → `SECURE_PROXY_SSL_HEADER`); the
host is the request's `Host`, checked against `ALLOWED_HOSTS` before any view runs (`X-Forwarded-Host` is not
believed: `USE_X_FORWARDED_HOST` stays off, so a proxy in front must pass `Host` through). Stored answers
(idempotent replays) keep paths and are resolved when they are sent, so a replay names the origin that asked.
"""

from __future__ import annotations

WEBSOCKET_SCHEMES = {"http": "ws", "https": "wss"}


def url_absolute(url: str, request, *, websocket: bool = False) -> str:
    """`url` (a path, or an absolute URL left as it is) resolved against the request's scheme and host; as a
    ws:/wss: URL for a WebSocket."""
    absolute = request.build_absolute_uri(url)
    if websocket:
        scheme, _, rest = absolute.partition(":")
        absolute = f"{WEBSOCKET_SCHEMES.get(scheme, scheme)}:{rest}"
    return absolute


def links_absolute(document: dict, request) -> dict:
    """A copy of a document (a payment's or a refund's) whose `links` are absolute for this request."""
    links = document.get("links")
    if not isinstance(links, dict):
        return document
    absolute = {
        **document,
        "links": {name: url_absolute(url, request, websocket=name == "websocket") for name, url in links.items()},
    }
    # The bank's challenge: a path when the bank is the sandbox, served by this site (a provider's is absolute).
    next_action = document.get("next_action")
    if isinstance(next_action, dict) and isinstance(next_action.get("url"), str):
        absolute["next_action"] = {**next_action, "url": url_absolute(next_action["url"], request)}
    return absolute


def headers_absolute(headers: dict, request) -> dict:
    """Response headers with `Location` absolute for this request."""
    return {
        name: url_absolute(value, request) if name.lower() == "location" else value for name, value in headers.items()
    }
