"""One `grep <payment id>` over the logs shows the payment's whole life, across daphne, a worker process and the
reconciler: JSON lines carrying its id and the id of the request that created it, from the request to the job,
the gateway call and the push; never its card (issue 14, item 6; docs/operations.md, "Logs").

Real processes, as `make run` starts them but with LOG_FORMAT=json, each writing to its own file
(tests/conftest.py, live_stack_factory)."""

import json
import re
import uuid
from datetime import timedelta

import django_rq
import httpx
import pytest
from django.utils import timezone

from payments.models import Payment
from tests.api.helpers import BODY, client_for
from tests.conftest import wait_until

pytestmark = pytest.mark.integration


def _log_lines(stack) -> list[dict]:
    """Every line every process wrote, each a JSON object (a line that is not fails the test), with `process`: the
    file it came from."""
    lines = []
    for path in sorted(stack.log_dir.glob("*.log")):
        for text in path.read_text(errors="replace").splitlines():
            # `payments_reconciler --once` reports its pass on stdout (the command's output, not a log line), which
            # the stack's files share with stderr.
            if text.strip() and not text.startswith("reconciled: "):
                try:
                    line = json.loads(text)
                except ValueError:
                    pytest.fail(f"not a JSON line in {path.name}: {text!r}\n{stack.logs()}")
                lines.append({**line, "process": path.stem})
    return lines


def _pay(stack, token: str, request_id: str) -> str:
    response = httpx.post(
        f"{stack.http_url}/api/v1/payments",
        json=BODY,
        headers={"Authorization": f"Token {token}", "Idempotency-Key": str(uuid.uuid4()), "X-Request-ID": request_id},
        timeout=10,
    )
    assert response.status_code == 202, response.text
    assert response.headers["X-Request-ID"] == request_id
    return response.json()["id"]


def _grep(lines: list[dict], text: str) -> list[dict]:
    return [line for line in lines if text in json.dumps(line)]


def _events(lines: list[dict], process: str) -> list[str]:
    return [line["event"] for line in lines if line["process"].startswith(process)]


def test_one_grep_of_a_payment_id_shows_its_whole_life(live_stack_factory):
    # Each job waits 0.8 s for the bank, so one worker process's threads hold the two payments at once.
    stack = live_stack_factory(LOG_FORMAT="json", SANDBOX_LATENCY_MS="800", SANDBOX_LATENCY_JITTER_MS="0")
    token = _token()
    # given: two payments, from two requests with ids of their own, both queued before any worker runs
    sent = {}
    for number in (1, 2):
        request_id = f"shop-{number}-{uuid.uuid4().hex[:12]}"
        sent[_pay(stack, token, request_id)] = request_id
    # when: one worker process takes both, on two of its threads at once
    stack.run_worker_burst()
    lines = _log_lines(stack)

    # then: grepping each payment's id finds its life, each line with its request's id
    for payment_id, request_id in sent.items():
        found = _grep(lines, payment_id)
        web = [line for line in found if line["process"] == "daphne"]
        (recorded,) = [line for line in web if line["event"] == "payment recorded"]
        assert recorded["request_id"] == request_id
        access_lines = [line for line in lines if line["logger"] == "daphne.access"]
        (access,) = [line for line in access_lines if line.get("request_id") == request_id]
        assert access["event"] == "POST /api/v1/payments" and access["status"] == 202
        worker = [line for line in found if line["process"].startswith("worker")]
        for line in worker:
            assert line.get("payment_id", payment_id) == payment_id, line
        mine = [line for line in worker if line.get("payment_id") == payment_id]
        assert all(line["request_id"] == request_id for line in mine), mine
        events = [line["event"] for line in mine]
        assert events.count("payment status changed") == 2  # pending → processing → succeeded
        (gateway,) = [line for line in mine if line["event"] == "gateway call"]
        assert gateway["operation"] == "charge" and gateway["outcome"] == "approved" and gateway["reference"]
        assert gateway["idempotency_key"] == f"payment-{payment_id}" and gateway["duration_ms"] >= 800
        (pushed,) = [line for line in mine if line["event"] == "push sent" and line["status"] == "succeeded"]
        assert pushed["seq"] == 3
        (done,) = [line for line in mine if line["event"] == "job done"]
        assert done["status"] == "succeeded" and done["job_id"] == f"payment-{payment_id}"

    # and no line of one job carries the other's ids: each thread's context is its own
    for line in lines:
        job_id = line.get("job_id", "")
        if job_id.startswith("payment-"):
            assert line.get("payment_id", job_id[len("payment-") :]) == job_id[len("payment-") :], line
            assert line["request_id"] == sent[job_id[len("payment-") :]], line
    # ...which matters because the two jobs ran at the same time, on two threads of one process
    done = {line["payment_id"]: line for line in lines if line["event"] == "job done"}
    taken = {
        line["payment_id"]: line
        for line in lines
        if line["event"] == "payment status changed" and line["to_status"] == "processing"
    }
    assert done.keys() == taken.keys() == sent.keys()
    assert len({line["worker"] for line in done.values()}) == 2
    assert max(line["timestamp"] for line in taken.values()) < min(line["timestamp"] for line in done.values())

    # and the card is in no line
    text = stack.logs()
    assert BODY["card"]["number"] not in text and '"cvc"' not in text


def test_the_reconciler_s_lines_join_the_payment_s_life(live_stack_factory):
    stack = live_stack_factory(LOG_FORMAT="json")
    # given: a payment whose job Redis lost before any worker took it
    payment_id = _pay(stack, _token(), "shop-lost-job")
    django_rq.get_queue("payments").fetch_job(f"payment-{payment_id}").delete()
    Payment.objects.filter(pk=payment_id).update(recheck_at=timezone.now() - timedelta(seconds=1))
    # when: the reconciler finds it, and a worker runs the job it queued again
    stack.run_reconciler_once()
    stack.run_worker_burst()
    # then: one grep shows the web server's, the reconciler's and the worker's lines
    found = _grep(_log_lines(stack), payment_id)
    assert "payment recorded" in _events(found, "daphne")
    assert "reconciler: queued its job again" in _events(found, "reconciler")
    assert {"gateway call", "push sent", "job done"} <= set(_events(found, "worker"))
    # the job queued again has no request behind it: only the payment's id ties its lines to the rest
    worker = [line for line in found if line["process"].startswith("worker") and line.get("payment_id")]
    assert worker and all(line["payment_id"] == payment_id and "request_id" not in line for line in worker)
    assert Payment.objects.get(pk=payment_id).status == "succeeded"


def _token() -> str:
    from rest_framework.authtoken.models import Token

    return Token.objects.get(user=client_for("merchant").user).key


def test_a_server_errors_traceback_in_the_logs_shows_no_card(live_stack_factory):
    stack = live_stack_factory(application="tests.integration.careless_asgi:application", LOG_FORMAT="json")
    card = {**BODY["card"], "number": "4000056655665556", "cvc": "7391"}
    response = httpx.post(
        f"{stack.http_url}/api/v1/payments",
        json={**BODY, "card": card},
        headers={"Authorization": f"Token {_token()}", "Idempotency-Key": str(uuid.uuid4()), "X-Request-ID": "boom"},
        timeout=10,
    )
    assert response.status_code == 500 and response.headers["X-Request-ID"] == "boom"
    lines = _log_lines(stack)
    (error,) = [line for line in lines if line["logger"] == "django.request" and line["level"] == "error"]
    assert error["request_id"] == "boom" and error["status_code"] == 500
    assert "RuntimeError: could not check card" in error["exception"] and "Traceback" in error["exception"]
    text = stack.logs()
    assert "4000056655665556" not in text and "4000 0566" not in text
    assert re.search(r"(?<![0-9A-Za-z])7391(?![0-9A-Za-z])", text) is None  # the CVC


def test_the_access_log_shows_no_credential_a_url_carried(live_stack_factory):
    """A WebSocket's signed token opens one payment's updates, an order link's signature opens the order: the
    access log, which more people read than may do either, stars both (infrastructure/redaction.py)."""
    from websockets.sync.client import connect

    from checkout.models import Order
    from checkout.order_links import order_page_path

    stack = live_stack_factory(LOG_FORMAT="json")
    payment_id = _pay(stack, _token(), f"creds-{uuid.uuid4().hex[:12]}")
    document = httpx.get(
        f"{stack.http_url}/api/v1/payments/{payment_id}", headers={"Authorization": f"Token {_token()}"}, timeout=10
    ).json()
    socket_url = document["links"]["websocket"]
    token = socket_url.split("token=", 1)[1]
    with connect(socket_url) as socket:
        assert json.loads(socket.recv(timeout=10))["payment"]["id"] == payment_id
    order = Order.objects.create(email="ada@example.com", total=2400, currency="USD")
    order_path = order_page_path(order)
    signature = order_path.rsplit(".", 1)[1]
    assert httpx.get(stack.http_url + order_path, timeout=10).status_code == 200

    def access_lines() -> list[dict]:
        return [line for line in _log_lines(stack) if line["logger"] == "daphne.access"]

    wait_until(lambda: any(order.number in line["event"] for line in access_lines()), timeout=10)
    wait_until(
        lambda: any(payment_id in line["event"] and "WS" in line["event"] for line in access_lines()), timeout=10
    )
    lines = access_lines()
    assert not [line for line in lines if token in json.dumps(line) or signature in json.dumps(line)], lines
    everything = _log_lines(stack)
    assert not [line for line in everything if token in json.dumps(line) or signature in json.dumps(line)], everything
