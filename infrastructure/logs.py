"""Structured logs: one line per event, JSON in production and readable text under `make run`, carrying the ids
that let one `grep` follow a payment across processes (docs/operations.md, "Logs").

Every process (daphne, payments_worker, payments_reconciler, runstack) logs through Python's logging, configured
by `logging_configure` (Django's LOGGING_CONFIG) from settings.LOGGING, whose handlers render with the formatter
`formatter(...)` builds: structlog's ProcessorFormatter, for records of structlog loggers and of the standard
library's alike. Ids travel in context variables (structlog.contextvars), bound for the length of a request
(infrastructure/middleware.py, RequestIdMiddleware) or a job (infrastructure/overrides/rq_worker.py,
payments/jobs.py): a context is per thread and per asyncio task, so the 64 jobs on one worker's threads and the
requests on daphne's threads never see each other's ids.

Card data: every value of every line is scrubbed (infrastructure/redaction.py) before it is rendered, a key that
names a card field (`number`, `cvc`, ...) loses its value, and the rendered line is checked once more: a JSON
line that would still show card data is written with it starred when that stays valid JSON, and is withheld
(replaced by a line saying so) when it would not. Imported by the logging configuration: keep its imports light.
"""

from __future__ import annotations

import json
import logging
import logging.config
import re
import sys
import uuid

import structlog

from infrastructure.redaction import CLEANSED, redact_card_data, redact_url_credentials

FORMATS = ("json", "console")
REQUEST_ID_HEADER = "X-Request-ID"
# A request id a client sends is kept when it is short and made of characters that are safe anywhere (a log line,
# a header, a Redis value, a shell's grep): UUIDs, ULIDs, most tracing ids. Anything else gets a new one.
_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
# A key whose value is card data, whatever the value looks like.
_CARD_KEY = re.compile(r"cvc2?|cvv2?|csc|card_?number|number|pan", re.I)


def request_id_new() -> str:
    return str(uuid.uuid4())


def request_id_accept(value: str | None) -> str:
    """The client's request id when it is well formed, else a new one. A value that the card scrubber would touch
    (a card number sent as an id) is refused: it would be written to the logs and to Redis starred, or not at all.
    """
    if value and _REQUEST_ID.fullmatch(value) and redact_card_data(value) == value:
        return value
    return request_id_new()


# --- Processors -----------------------------------------------------------------------------------------------


def _resolve_exc_info(logger, method_name, event_dict):
    """`log.exception(...)` records exc_info=True; resolve it while the exception is still being handled."""
    if event_dict.get("exc_info") is True:
        event_dict["exc_info"] = sys.exc_info()
    return event_dict


def _request_id_of_record(logger, method_name, event_dict):
    """Django's request log (`django.request`) is written after the middleware that binds the request id has
    returned; the record carries the request, and so its id."""
    record = event_dict.get("_record")
    request = getattr(record, "request", None)
    request_id = getattr(request, "request_id", None)
    if request_id and "request_id" not in event_dict:
        event_dict["request_id"] = request_id
    status_code = getattr(record, "status_code", None)
    if status_code is not None and "status_code" not in event_dict:
        event_dict["status_code"] = status_code
    return event_dict


def _scrubbed(value):
    if value is None or isinstance(value, bool | float):
        return value
    if isinstance(value, str):
        # A URL's credentials too: Django's request log names the path of every 4xx ("Method Not Allowed (POST):
        # /orders/<number>.<signature>"), as the access log does of every request.
        return redact_url_credentials(redact_card_data(value))
    if isinstance(value, int):
        return value if redact_card_data(str(value)) == str(value) else CLEANSED
    if isinstance(value, dict):
        return {key: CLEANSED if _is_card_key(key) else _scrubbed(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_scrubbed(item) for item in value]
    # Anything else is rendered through its str() or repr(): scrub what that shows.
    return redact_card_data(str(value))


def _is_card_key(key) -> bool:
    return isinstance(key, str) and _CARD_KEY.fullmatch(key) is not None


def scrub_card_data(logger, method_name, event_dict):
    """Card numbers and card field values out of every value (nested ones, an `exception` text); exc_info is left
    to the renderer, whose output is scrubbed (`_scrub_rendered_line`)."""
    return {
        key: value if key == "exc_info" else CLEANSED if _is_card_key(key) else _scrubbed(value)
        for key, value in event_dict.items()
    }


def _scrub_rendered_line(logger, method_name, line: str) -> str:
    """The last check of a console line, traceback included."""
    return redact_url_credentials(redact_card_data(line))


def _scrub_rendered_json(logger, method_name, line: str) -> str:
    """The last check of a JSON line. Values were scrubbed one by one; a line that still shows card data (a
    pattern made across two values) is starred where that keeps it JSON, and withheld where it would not."""
    scrubbed = redact_card_data(line)
    if scrubbed == line:
        return line
    try:
        json.loads(scrubbed)
    except ValueError:
        return json.dumps({"event": "a log line was withheld: it showed card data", "level": method_name})
    return scrubbed


# Added to every line, from structlog's loggers and the standard library's alike.
_SHARED = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_logger_name,
    structlog.stdlib.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def formatter(log_format: str) -> structlog.stdlib.ProcessorFormatter:
    """The logging formatter of every handler that writes lines out (settings.LOGGING, "()": this factory)."""
    if log_format == "json":
        renderers = [
            structlog.processors.format_exc_info,  # the traceback as the `exception` field, scrubbed next
            scrub_card_data,
            structlog.processors.JSONRenderer(),
            _scrub_rendered_json,
        ]
    elif log_format == "console":
        renderers = [
            scrub_card_data,
            structlog.dev.ConsoleRenderer(
                colors=sys.stderr.isatty(), exception_formatter=structlog.dev.plain_traceback
            ),
            _scrub_rendered_line,
        ]
    else:
        raise ValueError(f"LOG_FORMAT must be one of {', '.join(FORMATS)}, not {log_format!r}")
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*_SHARED, _request_id_of_record],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *renderers],
    )


def logging_configure(config: dict) -> None:
    """Django's LOGGING_CONFIG: structlog's loggers hand their events to the standard library's, then LOGGING is
    applied as usual. Called by django.setup() in every process."""
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_SHARED,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            _resolve_exc_info,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    logging.config.dictConfig(config)
