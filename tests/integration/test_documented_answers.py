"""Every answer an operation gives is one the OpenAPI document lists for it (issue 13, item 2).

Each operation the document lists (read from it, so a new one is probed as soon as it is documented) is asked,
on daphne, the wrong ways a client can ask: another method on its path, an Accept or `?format=` the API cannot
answer, a body that is not JSON or too large, no credentials or a wrong token, someone else's (or no) payment,
too many wrong tokens, and a database that cannot answer in time. A generated client raises on any status code
its operation does not document, so each answer must be in the document, and be a problem document when it is
an error.
"""

from __future__ import annotations

import httpx
import pytest

from tests.integration.openapi import HTTP_METHODS, api_document, merchant, operations, paid_payment, refunded_in_part
from webhooks.services import endpoint_create

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

PROBLEM = "application/problem+json"
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"
KEY = {"Idempotency-Key": "documented-answers"}
# Wrong tokens an address may send a minute on this stack: more than the operations the first test asks each with
# one (the production default, 10, is fewer than the operations now).
WRONG_TOKENS_ALLOWED = 40


@pytest.fixture
def api(live_stack_factory):
    """The live stack (with a short lock wait, so a database that cannot answer does so in a fraction of a second),
    its document, a merchant and the ids of a paid, partly refunded payment of theirs."""
    stack = live_stack_factory(DATABASE_LOCK_TIMEOUT_MS="300", API_AUTH_FAILURE_RATE=f"{WRONG_TOKENS_ALLOWED}/min")
    user = merchant()
    payment = paid_payment(user)
    refund = refunded_in_part(payment)

    def endpoint_id() -> str:
        return str(endpoint_create(owner=user, url="http://127.0.0.1:9/hooks", events=["*"]).pk)

    kept_endpoint = endpoint_id()

    class Api:
        url = stack.http_url
        document = api_document(stack.http_url)
        token = user.token
        ids = {"payment_id": str(payment.pk), "refund_id": str(refund.pk), "endpoint_id": kept_endpoint}

        def ask(self, operation, *, method=None, headers=None, auth=True, ids=None, **request):
            sent = {"Authorization": f"Token {self.token}"} if auth is True else ({} if auth is False else auth)
            ids = ids or self.ids
            if (method or operation.method) == "delete" and ids["endpoint_id"] == kept_endpoint:
                ids = {**ids, "endpoint_id": endpoint_id()}  # a DELETE that works deletes: each its own endpoint
            return httpx.request(
                method or operation.method,
                self.url + operation.url(**ids),
                headers={**sent, **KEY, **(headers or {})},
                timeout=30,
                **request,
            )

    return Api()


def assert_documented(operation, response, *, expected: int | None = None):
    where = f"{operation.method.upper()} {operation.path}"
    if expected is not None:
        assert response.status_code == expected, (where, response.status_code, response.text[:300])
    assert response.status_code in operation.documented, (where, response.status_code, sorted(operation.documented))
    if response.status_code >= 400:
        assert response.headers["Content-Type"] == PROBLEM, (where, response.headers.get("Content-Type"))
        body = response.json()
        required = {"type", "title", "status", "detail", "code"}
        assert required <= set(body) and body["status"] == response.status_code, (where, body)


def test_every_operation_documents_its_answers_to_the_wrong_request(api):
    every = operations(api.document)
    assert len(every) >= 8
    for operation in every:
        # another method on the path: 405, with the methods it takes
        taken = {method for method in HTTP_METHODS if method in api.document["paths"][operation.path]}
        other = next(method for method in ("put", "patch", "delete", "post", "get") if method not in taken)
        refused = api.ask(operation, method=other)
        assert_documented(operation, refused, expected=405)
        assert {m.strip().lower() for m in refused.headers["Allow"].split(",")} >= taken
        # an Accept the API cannot answer (the status URL answers JSON whatever Accept says)
        assert_documented(operation, api.ask(operation, headers={"Accept": "text/html"}))
        # a ?format= it has no representation for
        assert_documented(operation, api.ask(operation, params={"format": "xml"}))
        # a body that is not JSON: 415 where a body is read, ignored where none is
        not_json = api.ask(
            operation, content=b"amount=1", headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
        assert_documented(operation, not_json, expected=415 if operation.takes_a_body else None)
        # no credentials, and a wrong token
        assert_documented(operation, api.ask(operation, auth=False), expected=401)
        assert_documented(operation, api.ask(operation, auth={"Authorization": "Token wrong"}), expected=401)
        # a payment that is not there (or not theirs)
        if "{payment_id}" in operation.path:
            unknown = api.ask(operation, ids={**api.ids, "payment_id": UNKNOWN_ID})
            assert_documented(operation, unknown, expected=404)
        if "{endpoint_id}" in operation.path:
            unknown = api.ask(operation, ids={**api.ids, "endpoint_id": UNKNOWN_ID})
            assert_documented(operation, unknown, expected=404)
        if operation.takes_a_body:
            # JSON that does not parse, and a body over the 2.5 MB limit
            broken = api.ask(operation, content=b'{"amount": ', headers={"Content-Type": "application/json"})
            assert_documented(operation, broken, expected=400)
            large = b'{"description": "' + b"x" * (3 * 1024 * 1024) + b'"}'
            huge = api.ask(operation, content=large, headers={"Content-Type": "application/json"})
            assert_documented(operation, huge, expected=413)


def test_every_operation_documents_the_429_of_too_many_wrong_tokens(api):
    # given: an address that has sent as many wrong tokens as API_AUTH_FAILURE_RATE allows
    any_operation = operations(api.document)[0]
    for _ in range(WRONG_TOKENS_ALLOWED):
        api.ask(any_operation, auth={"Authorization": "Token wrong"})
    # then: every operation answers its client, the right token included, a documented 429 with Retry-After
    for operation in operations(api.document):
        throttled = api.ask(operation)
        assert_documented(operation, throttled, expected=429)
        assert int(throttled.headers["Retry-After"]) > 0


@pytest.fixture
def tokens_locked(lock_holder):
    """The token table (every request's first read) held by another session."""
    return lambda: lock_holder("LOCK TABLE authtoken_token IN ACCESS EXCLUSIVE MODE")


def test_every_operation_documents_the_503_of_a_busy_database(api, tokens_locked):
    # given: a database that cannot read the client's token within the lock timeout
    tokens_locked()
    # then: every operation answers a documented 503 with Retry-After, not a 500
    for operation in operations(api.document):
        busy = api.ask(operation, json={} if operation.takes_a_body else None)
        assert_documented(operation, busy, expected=503)
        assert int(busy.headers["Retry-After"]) > 0
