"""Every request has an id, in each of its log lines (JSON in production) and in its answer's X-Request-ID; a
payment's lines carry its id; the job a request queues carries the request's id to the worker (issue 14, item 6;
docs/operations.md, "Logs")."""

import uuid

import django_rq
import pytest

from tests.api.helpers import BODY


def _is_uuid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


@pytest.mark.django_db(transaction=True)  # real commits: the payment's line and its enqueue run after commit
def test_a_payment_create_logs_json_lines_with_its_request_id_and_payment_id(api, json_logs):
    # given
    request_id = "checkout-7f3a9c.retry_1"
    # when
    response = api.post(
        "/api/v1/payments", BODY, format="json", HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()), HTTP_X_REQUEST_ID=request_id
    )
    # then
    assert response.status_code == 202, response.content
    assert response["X-Request-ID"] == request_id
    payment_id = response.json()["id"]
    lines = json_logs.lines()
    (recorded,) = [line for line in lines if line["event"] == "payment recorded"]
    assert recorded["payment_id"] == payment_id
    assert recorded["request_id"] == request_id
    assert recorded["level"] == "info" and recorded["logger"] == "payments.services.payments"
    assert {"timestamp", "amount", "currency"} <= set(recorded)
    # and the job it queued carries the request's id to the worker, under the job id it always had
    job = django_rq.get_queue("payments").fetch_job(f"payment-{payment_id}")
    assert job.meta == {"request_id": request_id}
    assert job.args == (payment_id,)
    # and no line shows the card
    assert BODY["card"]["number"] not in json_logs.text


@pytest.mark.parametrize(
    "sent",
    [
        None,
        "",
        "x" * 129,  # too long
        "id with spaces",
        "id\r\nX-Injected: 1",
        "<script>",
        "ünïcode",
        "4242424242424242",  # a card number is no request id: it would be starred in every line, or leak
    ],
    ids=["absent", "empty", "too-long", "spaces", "crlf", "markup", "non-ascii", "card-number"],
)
def test_a_request_without_a_well_formed_id_gets_a_new_one(api, sent):
    headers = {} if sent is None else {"HTTP_X_REQUEST_ID": sent}
    response = api.get("/api/v1/payments", **headers)
    assert response.status_code == 200
    assert _is_uuid(response["X-Request-ID"])
    assert response["X-Request-ID"] != sent


@pytest.mark.parametrize(
    "sent", ["a", "01JDQ2ZC8T8X8Z1Y3W5V7N9Q4R", "Root-1-67891233-abcdef012345678912345678", "x" * 128]
)
def test_a_well_formed_request_id_is_kept(api, sent):
    assert api.get("/api/v1/payments", HTTP_X_REQUEST_ID=sent)["X-Request-ID"] == sent


def test_every_answer_has_a_request_id_errors_included(client, db):
    for path in ("/", "/nowhere", "/api/v1/payments"):  # a page, a 404, a 401
        assert _is_uuid(client.get(path)["X-Request-ID"]), path


def test_djangos_request_log_line_carries_the_request_id(api, json_logs):
    # Django writes "Not Found: ..." after the middleware that bound the id has returned: from the request itself.
    response = api.get(f"/api/v1/payments/{uuid.uuid4()}", HTTP_X_REQUEST_ID="req-404")
    assert response.status_code == 404
    (line,) = [line for line in json_logs.lines() if line["logger"] == "django.request"]
    assert line["request_id"] == "req-404"
    assert line["status_code"] == 404
    assert line["level"] == "warning"


def test_a_request_leaves_no_id_behind(api, json_logs):
    import structlog

    api.get("/api/v1/payments", HTTP_X_REQUEST_ID="req-gone")
    assert structlog.contextvars.get_contextvars() == {}
    structlog.get_logger("test").info("after the request")
    (line,) = [line for line in json_logs.lines() if line["event"] == "after the request"]
    assert "request_id" not in line


@pytest.mark.django_db
def test_djangos_request_log_never_shows_a_credential_the_url_carried(client, json_logs):
    """An order link's signature and a bank challenge's id open what they name: Django's request log, which names
    the path of every 4xx, stars them as the access log does (infrastructure/redaction.py)."""
    from checkout.models import Order
    from checkout.order_links import order_page_path

    order = Order.objects.create(email="ada@example.com", total=2400, currency="USD")
    order_path = order_page_path(order)
    signature = order_path.rsplit(".", 1)[1]
    challenge_id = "Zm9yZ2VkLWJ1dC1zaGFwZWQtbGlrZS1vbmU"
    # when
    assert client.post(order_path).status_code == 405
    assert client.put(f"{order_path}/status").status_code == 405
    assert client.get(f"/sandbox-bank/authenticate/{challenge_id}").status_code == 404
    # then
    lines = json_logs.lines()
    assert [line for line in lines if line["logger"] == "django.request" and order.number in line["event"]]
    assert [line for line in lines if "/sandbox-bank/authenticate/" in line["event"]]
    assert signature not in json_logs.text and challenge_id not in json_logs.text
