"""azure-core's long-running-operation poller, as shipped, follows a payment on the real stack (issue 13).

A new API client reaches for the poller it already trusts: `LROPoller` with `LROBasePolling`, no polling
strategy of its own. Here it runs against daphne, Redis and a real RQ worker, exactly as docs/api.md ("Clients
we test") shows it, and must come back with the payment's final document, having waited what each answer's
`Retry-After` asked. The only thing added to the documented client is a policy that notes each exchange: it
watches the client, it steers nothing.
"""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import pairwise

import pytest
from azure.core import PipelineClient
from azure.core.credentials import AzureKeyCredential
from azure.core.pipeline import PipelineContext, PipelineResponse
from azure.core.pipeline.policies import AzureKeyCredentialPolicy, RedirectPolicy, RetryPolicy, SansIOHTTPPolicy
from azure.core.polling import LROPoller
from azure.core.polling.base_polling import LROBasePolling
from azure.core.rest import HttpRequest
from rest_framework.authtoken.models import Token

from tests.api.helpers import client_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

SLOW_CARD = "4000000000000440"  # docs/test-cards.md
CARDS = {
    "success": ("4242424242424242", "succeeded"),
    "decline": ("4000000000000002", "failed"),
    "slow": (SLOW_CARD, "succeeded"),
}


@dataclass(frozen=True)
class Exchange:
    at: float
    method: str
    url: str
    status: int
    retry_after: str | None


class Exchanges(SansIOHTTPPolicy):
    """Notes every request the pipeline sends and its answer, each hop of a redirect included."""

    def __init__(self):
        super().__init__()
        self.seen: list[Exchange] = []

    def on_response(self, request, response):
        http = response.http_response
        self.seen.append(
            Exchange(
                time.monotonic(),
                request.http_request.method,
                request.http_request.url,
                http.status_code,
                http.headers.get("Retry-After"),
            )
        )


# docs/api.md's five lines, `watch` aside: pay, then let azure-core wait for the outcome.


def pay(api: str, token: str, card_number: str, *, watch: Exchanges) -> tuple[PipelineClient, PipelineResponse]:
    card = {"number": card_number, "exp_month": 12, "exp_year": 2030, "cvc": "123"}
    payment = {"amount": 2400, "currency": "USD", "card": card}
    key = str(uuid.uuid4())
    auth = AzureKeyCredentialPolicy(AzureKeyCredential(token), "Authorization", prefix="Token")
    client = PipelineClient(api, per_call_policies=[RedirectPolicy(), RetryPolicy(), auth, watch])
    request = HttpRequest("POST", f"{api}/api/v1/payments", json=payment, headers={"Idempotency-Key": key})
    return client, PipelineResponse(request, client.send_request(request), PipelineContext(None))


def wait(client: PipelineClient, accepted: PipelineResponse) -> tuple[LROPoller, dict]:
    poller = LROPoller(client, accepted, lambda answer: answer.http_response.json(), LROBasePolling())
    return poller, poller.result(timeout=60)


def pay_and_wait(api: str, token: str, card_number: str, *, watch: Exchanges) -> tuple[LROPoller, dict]:
    return wait(*pay(api, token, card_number, watch=watch))


def test_azure_core_poller_follows_success_decline_the_slow_card_and_a_cancel_to_the_final_payment(
    live_stack_factory,
):
    # given: the real stack, the bank taking its time (1 s a call: no outcome before the first poll), and a merchant
    stack = live_stack_factory(SANDBOX_LATENCY_MS="1000", SANDBOX_SLOW_CARD_MS="3000")
    token = Token.objects.get(user=client_for("azure-merchant").user).key

    # when: a payment is canceled while no worker runs yet, then waited for
    watch = Exchanges()
    client, accepted = pay(stack.http_url, token, "4242424242424242", watch=watch)
    assert client.send_request(HttpRequest("POST", accepted.http_response.json()["links"]["cancel"])).status_code == 202
    poller, canceled = wait(client, accepted)
    # then: the poller sees it final at its first poll, and returns the canceled payment
    assert (poller.status(), canceled["status"], canceled["has_outcome"]) == ("Succeeded", "canceled", True)
    exchanges = [(seen.method, seen.status) for seen in watch.seen]
    assert exchanges == [("POST", 202), ("POST", 202), ("GET", 303), ("GET", 200)]  # pay, cancel, poll, the payment

    stack.start_worker()

    # when: the merchant pays with each card and waits with azure-core's poller, all three at once
    watches = {name: Exchanges() for name in CARDS}
    with ThreadPoolExecutor(len(CARDS)) as pool:
        futures = {
            name: pool.submit(pay_and_wait, stack.http_url, token, number, watch=watches[name])
            for name, (number, _) in CARDS.items()
        }
        results = {name: future.result(timeout=90) for name, future in futures.items()}

    for name, (_, expected) in CARDS.items():
        poller, payment = results[name]
        seen = watches[name].seen
        # then: the poller says the operation finished, and returned the payment itself, final
        assert poller.status() == "Succeeded", (name, seen)
        assert payment["status"] == expected and payment["has_outcome"] is True, (name, payment)
        assert "events" in payment, "the payment's own document (GET /payments/{id}), not a status document"
        assert seen[-1] == Exchange(seen[-1].at, "GET", payment["links"]["self"], 200, None)
        # and it polled the status URL the 202 named (an absolute URL), until the 303 that sent it to the payment
        created, *polls, final = seen
        assert (created.method, created.status, created.url) == ("POST", 202, f"{stack.http_url}/api/v1/payments")
        assert {poll.url for poll in polls} == {payment["links"]["status"]}, (name, polls)
        assert [poll.status for poll in polls][-1] == 303
        assert {poll.status for poll in polls[:-1]} == {202}, (name, polls)
        # and between two polls it waited what the 202 before asked (LROBasePolling asks once at once, then obeys)
        waits = [(after.at - before.at, float(before.retry_after)) for before, after in pairwise(polls)]
        assert waits, f"{name}: the payment was final at the first poll; nothing showed the poller waiting"
        for waited, asked in waits:
            assert waited >= asked * 0.95, (name, waits)
    assert results["decline"][1]["failure"]["decline_code"] == "card_declined"
    assert len(watches["slow"].seen) > len(watches["success"].seen)  # the slow card kept it waiting longer
