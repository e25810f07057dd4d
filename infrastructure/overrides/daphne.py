"""Three swaps of daphne's internals, made only when daphne is what is serving this process.

Library: daphne. Private names touched: `daphne.http_protocol.WebRequest` (the request class
`HTTPFactory.buildProtocol` looks up per connection; through it Twisted's `http.Request.__init__` and its
`parsePOSTFormSubmission` argument, and Twisted's public `Request.setResponseCode`) and
`daphne.cli.AccessLogGenerator` (the name the CLI builds its access log writer from). Neither is a public API
of daphne: pinned to the minor version they were written against, `daphne>=4.2,<4.3` (pyproject.toml).
Twisted is not pinned: the switch is looked up by name, and a Twisted without it leaves daphne as it is.

Upstream:
- request bodies: Twisted added the switch in twisted/twisted#12413 (fixes twisted/twisted#12412, "allow
  opting out of parsing of multipart and form-encoding upload parsing in twisted.web"); no daphne issue or
  change found that passes it. django/daphne#447 is a form POST that daphne answered with Twisted's bare 400.
- the access log: no upstream issue found about card data (or secrets) in it; daphne writes the request line
  straight to a stream, past Python's logging. django/daphne#271 (closed) is the maintainers' answer to
  customising it: subclass `AccessLogGenerator` and make it pluggable in the CLI, which it still is not;
  django/daphne#473 (open) moves the access log to Python's logging, which is what the subclass here does, so
  that its lines are JSON (or text) like every other, scrubbed, and carry the request's id.
- reason phrases: no upstream issue found. ASGI carries no reason phrase, daphne passes only the status code to
  Twisted, and Twisted's table (`twisted.web.http.RESPONSES`) has no 422 or 429.
"""

from __future__ import annotations

import contextvars
import inspect
import sys

import structlog

from infrastructure.logs import REQUEST_ID_HEADER
from infrastructure.reason_phrases import reason_phrase
from infrastructure.redaction import redact_card_data, redact_url_credentials

access_logger = structlog.get_logger("daphne.access")
# The X-Request-ID of the answer whose access log line is being written: daphne writes the line from inside the
# request's handle_reply, on the reactor's one thread, and passes the writer no header.
_answer_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("answer_request_id", default=None)
_REQUEST_ID_HEADER = REQUEST_ID_HEADER.lower().encode("latin-1")


def daphne_leaves_request_bodies_to_the_application() -> None:
    """Under daphne, Twisted parses every POST with a form content type itself before the application sees it
    (daphne never uses the result) and answers a malformed multipart body with a bare 400 of its own, so the
    API could not answer its problem+json 415. Twisted has a switch for that parsing; daphne does not pass
    it, so its request class is given one that does. Only when daphne is what is serving this process."""
    http_protocol = sys.modules.get("daphne.http_protocol")
    if http_protocol is None or getattr(http_protocol.WebRequest, "leaves_bodies_alone", False):
        return
    if "parsePOSTFormSubmission" not in inspect.signature(http_protocol.http.Request.__init__).parameters:
        return  # an older Twisted without the switch: it parses as before

    class WebRequest(http_protocol.WebRequest):
        leaves_bodies_alone = True

        def __init__(self, *args, **kwargs):
            super().__init__(*args, parsePOSTFormSubmission=False, **kwargs)

    http_protocol.WebRequest = WebRequest  # HTTPFactory.buildProtocol looks the name up per connection


def daphne_reason_phrases_of_rfc_9110() -> None:
    """daphne hands Twisted only a response's status code, and Twisted looks the reason phrase up in a table of its
    own that has no 422 and no 429: every invalid request was answered `HTTP/1.1 422 Unknown Status`. daphne's
    request class is given the phrases RFC 9110 names (infrastructure/reason_phrases.py), the ones Django's own
    status line and log use too. Composes with the other swap of the class: each subclasses the one in place."""
    http_protocol = sys.modules.get("daphne.http_protocol")
    if http_protocol is None or getattr(http_protocol.WebRequest, "rfc_9110_reason_phrases", False):
        return

    class WebRequest(http_protocol.WebRequest):
        rfc_9110_reason_phrases = True

        def setResponseCode(self, code, message=None):  # noqa: N802 - Twisted's name
            if message is None:
                message = reason_phrase(code).encode("ascii")
            super().setResponseCode(code, message)

    http_protocol.WebRequest = WebRequest  # HTTPFactory.buildProtocol looks the name up per connection


def daphne_access_log_through_logging() -> None:
    """daphne writes its access log (the request line, query string included) straight to a stream, past the
    logging formatter: a card number or CVC put in a URL would be written as it is, and the line is neither JSON
    nor tied to the request's other lines. Its CLI builds the log writer after loading the application's module,
    from the name in daphne.cli, so that name is given a writer that logs each entry (scrubbed) as an event of
    the `daphne.access` logger, with the request id the answer carried (RequestIdMiddleware). daphne's
    --access-log and verbosity still turn it on or off; where the lines go is the logging configuration's.

    The id is read from the answer's headers by daphne's request class, given one that remembers it while the
    line is written. Composes with the other swaps of the class.

    A URL's credentials (a WebSocket's `?token=`, an order link's signature) are starred too: the access log is
    read by more people than may watch a shopper's payment or open their order."""
    cli = sys.modules.get("daphne.cli")
    http_protocol = sys.modules.get("daphne.http_protocol")
    if cli is None or http_protocol is None or getattr(cli.AccessLogGenerator, "logs_through_logging", False):
        return

    class WebRequest(http_protocol.WebRequest):
        request_id: str | None = None

        def handle_reply(self, message):
            if message.get("type") == "http.response.start":
                for name, value in message.get("headers", ()):
                    if bytes(name).lower() == _REQUEST_ID_HEADER:
                        self.request_id = bytes(value).decode("latin-1")
            token = _answer_request_id.set(self.request_id)
            try:
                super().handle_reply(message)
            finally:
                _answer_request_id.reset(token)

    class AccessLogGenerator(cli.AccessLogGenerator):
        logs_through_logging = True

        def __call__(self, protocol, action, details):
            if protocol == "http" and action == "complete":
                self._log(
                    f"{details['method']} {details['path']}",
                    client=details["client"],
                    status=details["status"],
                    size=details["size"],
                    duration_ms=round(details["time_taken"] * 1000, 1),
                )
            else:  # the WebSocket entries, through write_entry
                super().__call__(protocol, action, details)

        def write_entry(self, host, date, request, status=None, length=None, ident=None, user=None):
            self._log(request, client=host, status=status, size=length)

        @staticmethod
        def _log(request: str, **fields) -> None:
            request_id = _answer_request_id.get()
            if request_id:
                fields["request_id"] = request_id
            line = redact_url_credentials(redact_card_data(request))
            access_logger.info(line, **{k: v for k, v in fields.items() if v is not None})

    http_protocol.WebRequest = WebRequest  # HTTPFactory.buildProtocol looks the name up per connection
    cli.AccessLogGenerator = AccessLogGenerator
