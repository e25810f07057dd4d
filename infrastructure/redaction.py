"""Card data never in an error page, an error e-mail or a log line.

Django's own filter hides only what the sensitive_* decorators name, and only when DEBUG is off; the filter
here hides card fields by name and by content, in every mode, and the log formatter (infrastructure/logs.py)
scrubs what is left (an exception message, a traceback) from every line, JSON or text. Imported by the logging
configuration, before the app registry is ready: keep its imports light.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit, urlunsplit

from django.core.exceptions import PermissionDenied
from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter

CLEANSED = SafeExceptionReporterFilter.cleansed_substitute
# Names of variables, fields and keys that hold card data: the card, its fields, `card_details`.
CARD_NAMES = re.compile(r"cvc|cvv|csc|card|number|\bpan\b", re.I)
# A card field written out with its value, as JSON, a repr, a query or a message does: `"cvc": "123"`,
# `'number': '4242 4242…'`, `cvc=123`, `\\"cvc\\":\\"123\\"`, `cvc 123`. The value runs to the next delimiter.
_DELIMITERS = r"\"'\\,;&}\]\n"
_CARD_FIELD = r"\b(?:cvc2?|cvv2?|csc|card_?number|number|pan)\b"
CARD_FIELD_VALUE = re.compile(
    rf"(?P<name>{_CARD_FIELD}[\"'\\]*\s*[:=]\s*[\"'\\]*)"
    rf"(?P<value>[^{_DELIMITERS}\s](?:[^{_DELIMITERS}]*[^{_DELIMITERS}\s])?)",
    re.I,
)
CARD_FIELD_DIGITS = re.compile(rf"(?P<name>{_CARD_FIELD}\s+)(?P<value>\d(?:[ -]?\d)*)", re.I)
# 12 to 19 digits, optionally grouped by a dash, a slash, an underscore or a few spaces: a card number if it passes
# Luhn (and is not the start of a UUID whose first groups happen to be digits only). Not dots or colons: a log
# line's timestamp and the floats in it must stay readable (free text with any separator is refused at the door,
# payments/text.py).
DIGIT_RUN = re.compile(r"(?<![\d-])\d(?:(?: {1,4}|[-/_])?\d){11,18}(?!\d)")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)


def _passes_luhn(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def redact_card_data(text: str) -> str:
    """`text` with every card number, and the value of every card field, replaced by stars."""

    # A run of digits inside a UUID (a payment's id, a request's) is part of an id, not a card number: starring it
    # would break the one grep that follows a payment through the logs.
    uuids = [found.span() for found in UUID.finditer(text)]

    def pan(match: re.Match) -> str:
        start, end = match.span()
        if any(start < uuid_end and uuid_start < end for uuid_start, uuid_end in uuids):
            return match.group()
        if not _passes_luhn(re.sub(r"\D", "", match.group())):
            return match.group()
        return CLEANSED

    def value(match: re.Match) -> str:
        return match.group("name") + CLEANSED

    text = DIGIT_RUN.sub(pan, text)
    return CARD_FIELD_DIGITS.sub(value, CARD_FIELD_VALUE.sub(value, text))


# Credentials that travel in a URL: the WebSocket's signed `token` (a bearer credential for one payment's updates),
# the order page's signature (`/orders/<number>.<signature>`, which opens that order to whoever holds it) and the
# sandbox bank's challenge id (`/sandbox-bank/authenticate/<id>`, whose holder may answer the bank's question).
# A log reader must not be able to open any of them from a request line.
_URL_TOKEN = re.compile(r"(?P<name>[?&]token=)(?P<value>[^&\s#]+)")
_ORDER_LINK = re.compile(r"(?P<name>/orders/[0-9A-Za-z]+\.)(?P<value>[A-Za-z0-9_-]+)")
_BANK_CHALLENGE = re.compile(r"(?P<name>/sandbox-bank/authenticate/)(?P<value>[^/?#\s]+)")


def redact_url_credentials(text: str) -> str:
    """`text` (a request line, a URL) with the credentials a URL can carry replaced by stars."""

    def value(match: re.Match) -> str:
        return match.group("name") + CLEANSED

    return _BANK_CHALLENGE.sub(value, _ORDER_LINK.sub(value, _URL_TOKEN.sub(value, text)))


def url_without_password(url: str) -> str:
    """A service URL (Redis's, the database's) fit for a log line: its password starred, the rest as it is."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:{CLEANSED}@{netloc[-1]}"))


def _shows_card_data(value) -> bool:
    try:
        text = value.decode("utf-8", "replace") if isinstance(value, bytes | bytearray) else repr(value)
    except Exception:  # a repr that fails cannot show anything
        return False
    return redact_card_data(text) != text


class CardDataReporterFilter(SafeExceptionReporterFilter):
    """Django's filter, always on (DEBUG pages included), that also hides any variable, POST field, header or
    cookie that is, or shows, card data: `card_details`, a body holding `"cvc": …`, a serializer built on one."""

    hidden_settings = re.compile(SafeExceptionReporterFilter.hidden_settings.pattern + "|" + CARD_NAMES.pattern, re.I)

    def is_active(self, request):
        return True

    def _cleanse(self, name, value):
        if isinstance(name, str) and CARD_NAMES.search(name):
            return CLEANSED
        return CLEANSED if _shows_card_data(value) else value

    def get_post_parameters(self, request):
        parameters = super().get_post_parameters(request)
        if not parameters:
            return parameters
        cleansed = parameters.copy()
        for name in cleansed:
            if any(_shows_card_data(value) for value in parameters.getlist(name)) or CARD_NAMES.search(name):
                cleansed[name] = CLEANSED
        return cleansed

    def get_safe_request_meta(self, request):
        return {name: self._cleanse("", value) for name, value in super().get_safe_request_meta(request).items()}

    def get_traceback_frame_variables(self, request, tb_frame):
        variables = super().get_traceback_frame_variables(request, tb_frame)
        return [(name, self._cleanse(name, value)) for name, value in variables]


class CardDataExceptionReporter(ExceptionReporter):
    """Django's error page and e-mail, with what the filter does not see scrubbed too: the query string, the
    exception's message (and its causes'), the raw URL."""

    def get_traceback_data(self):
        data = super().get_traceback_data()
        if "request_GET_items" in data:
            data["request_GET_items"] = [
                (name, self.filter._cleanse(name, value)) for name, value in data["request_GET_items"]
            ]
        for key in ("exception_value", "exception_notes", "request_insecure_uri", "unicode_hint"):
            if isinstance(data.get(key), str):
                data[key] = redact_card_data(data[key])
        for frame in data.get("frames", []):
            if frame.get("exc_cause") is not None:
                frame["exc_cause"] = redact_card_data(str(frame["exc_cause"]))
        return data


class PermissionDeniedWithoutTraceback(logging.Filter):
    """Django logs every 403 with the PermissionDenied's traceback: a refused request is not an error of ours,
    and one line says all there is to say (a flood of forged requests must not flood the log)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], PermissionDenied):
            record.exc_info = None
            record.exc_text = None
        return True
