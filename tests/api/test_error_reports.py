"""No error page, error e-mail or log line shows card data (issue 10, item 8): not under DEBUG, not in a traceback's
local variables, not in an exception's message."""

import io
import json
import logging
import re

import pytest
import structlog
from django.core import mail

from infrastructure.logs import formatter
from tests.api.helpers import BODY, CARD, create

NUMBER = "4242424242424242"
CVC = "7391"


def _shows_cvc(text: str) -> bool:
    return re.search(rf"(?<![0-9A-Za-z]){CVC}(?![0-9A-Za-z])", text) is not None


@pytest.fixture
def failing_card_check(monkeypatch):
    """A bug deep in the create path, raised while the card's number and CVC are in the frames' variables, with a
    message that carries them as careless code would."""

    def broken(*, number, exp_month, exp_year, cvc):
        raise RuntimeError(f"could not check card {number} with cvc={cvc}")

    monkeypatch.setattr("payments.api.serializers.validate_card", broken)


def _create_failing(api):
    api.raise_request_exception = False
    response = create(api, {**BODY, "card": {**CARD, "number": NUMBER, "cvc": CVC}})
    assert response.status_code == 500
    return response


def test_debug_error_page_never_shows_card_number_or_cvc(api, settings, failing_card_check):
    settings.DEBUG = True
    page = _create_failing(api).content.decode()
    assert "Traceback" in page and "RuntimeError" in page  # it is Django's technical 500 page
    assert NUMBER not in page
    assert not _shows_cvc(page)


def test_error_email_never_shows_card_number_or_cvc(api, settings, failing_card_check):
    settings.ADMINS = [("Ops", "ops@example.com")]
    settings.DEBUG = False
    _create_failing(api)
    (email,) = mail.outbox
    text = email.subject + email.body + "".join(str(content) for content, _ in email.alternatives)
    assert "RuntimeError" in text
    assert NUMBER not in text
    assert not _shows_cvc(text)


def _writing_handlers(logger: logging.Logger) -> list[logging.StreamHandler]:
    """Every handler a record of `logger` reaches that writes text out (pytest's own capture aside)."""
    handlers = []
    while logger is not None:
        handlers += [h for h in logger.handlers if type(h) is logging.StreamHandler]
        logger = logger.parent if logger.propagate else None
    return handlers


@pytest.mark.parametrize("log_format", ["json", "console"])
@pytest.mark.parametrize("debug", [True, False], ids=["debug", "production"])
def test_server_error_log_never_shows_card_number_or_cvc(
    api, settings, monkeypatch, failing_card_check, debug, log_format
):
    settings.DEBUG = debug
    handlers = _writing_handlers(logging.getLogger("django.request"))
    assert handlers
    streams = []
    for handler in handlers:
        streams.append(io.StringIO())
        monkeypatch.setattr(handler, "stream", streams[-1])
        monkeypatch.setattr(handler, "formatter", formatter(log_format))
    _create_failing(api)
    written = "".join(stream.getvalue() for stream in streams)
    assert "Internal Server Error: /api/v1/payments" in written and "RuntimeError" in written
    assert NUMBER not in written
    assert not _shows_cvc(written)
    if log_format == "json":
        (line,) = [line for line in map(json.loads, written.splitlines()) if line["logger"] == "django.request"]
        assert line["exception"].startswith("Traceback") and "RuntimeError: could not check card" in line["exception"]
        assert line["request_id"] and line["status_code"] == 500


def test_a_structured_events_fields_never_show_card_data(json_logs):
    class Careless:
        def __repr__(self):
            return f"Careless(number={NUMBER}, cvc={CVC})"

    structlog.get_logger("test").info(
        "careless",
        payment_id="b11379a2-0ff4-4f65-84d7-59889213147b",
        amount=2400,
        note=f"paid with {NUMBER[:4]} {NUMBER[4:8]} {NUMBER[8:12]} {NUMBER[12:]}",
        body={"card": {"number": NUMBER, "cvc": CVC, "last4": "4242"}},
        cvc=CVC,
        number=4242424242424242,
        digits=[4000000000000002],
        card_number="5555-5555-5555-4444",
        object=Careless(),
        by_number={NUMBER: 1},
    )
    (line,) = json_logs.lines()  # one line, and JSON
    text = json_logs.text
    for shown in (NUMBER, "4242 4242", "4000000000000002", "5555-5555"):
        assert shown not in text, shown
    assert not _shows_cvc(text)
    # what is not card data is kept as it was
    assert line["payment_id"] == "b11379a2-0ff4-4f65-84d7-59889213147b"
    assert line["amount"] == 2400 and line["body"]["card"]["last4"] == "4242"


@pytest.mark.parametrize("origin", ["structlog", "stdlib"])
def test_a_tracebacks_card_data_never_shows_in_a_json_line(json_logs, origin):
    def charge(number, cvc):
        raise ValueError(f"bank refused {number} (cvc={cvc})")

    try:
        charge(NUMBER, CVC)
    except ValueError:
        if origin == "structlog":
            structlog.get_logger("test").exception("charge failed", cvc=CVC)
        else:
            logging.getLogger("test").exception("charge failed for %s", NUMBER)
    (line,) = json_logs.lines()
    assert line["event"].startswith("charge failed") and line["level"] == "error"
    assert line["exception"].startswith("Traceback") and "ValueError: bank refused" in line["exception"]
    assert NUMBER not in json_logs.text
    assert not _shows_cvc(json_logs.text)


@pytest.mark.parametrize(
    ("text", "redacted"),
    [
        ('{"card": {"number": "4242424242424242", "cvc": "123"}}', '{"card": {"number": "*", "cvc": "*"}}'),
        ("{'number': '4000 0000 0000 0002', 'cvc': 123}", "{'number': '*', 'cvc': *}"),
        ("card 5555-5555-5555-4444 refused", "card * refused"),
        ("cvc=0123&number=4242424242424242&amount=2400", "cvc=*&number=*&amount=2400"),
        ("RuntimeError: bad cvc 0123 for card number 4242 4242 4242 4242", "RuntimeError: bad cvc * for card number *"),
        ('b\'{\\"cvc\\":\\"123\\"}\'', 'b\'{\\"cvc\\":\\"*\\"}\''),
    ],
)
def test_card_data_is_redacted_wherever_it_is_written(text, redacted):
    from infrastructure.redaction import redact_card_data

    assert re.sub(r"\*+", "*", redact_card_data(text)) == redacted


@pytest.mark.parametrize(
    "text",
    [
        "Unauthorized: /api/v1/payments/00000000-0000-0000-0000-000000000000/status",  # a UUID of digits
        "2026-12-01 16:34:06,509 WARNING django.request",
        "amount 240000 USD, seq 3, payment 70f77076-cad1-486a-9c6c-8f12fc106c01",
        "4242424242424241 fails Luhn, so it is not a card number",
        "the number of payments is 3",
        # digit runs inside a UUID that pass Luhn: a payment's id, which must stay greppable in every log line
        "payment b11379a2-0ff4-4f65-84d7-59889213147b settled",
        "request_id=f4242426-4242-4242-abcd-ef0123456789",
    ],
)
def test_what_is_not_card_data_is_left_alone(text):
    from infrastructure.redaction import redact_card_data

    assert redact_card_data(text) == text


@pytest.mark.integration
def test_the_servers_access_log_never_shows_card_data_put_in_a_url(live_stack):
    import httpx

    for path in ("/api/v1/payments", "/checkout", "/nowhere"):
        httpx.get(f"{live_stack.http_url}{path}?card_number=4111111111111111&cvc=321&number=4000+0566+5566+5556")
    logs = live_stack.logs()
    assert "GET /api/v1/payments?card_number=" in logs  # the line is there...
    assert "4111111111111111" not in logs and "cvc=321" not in logs and "5556" not in logs  # ...without the card
