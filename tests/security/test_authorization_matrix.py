"""Intruders (issue 11, item 4): who may do what, to whose payment, on every surface, as one table.

Every API operation comes from the OpenAPI document the app serves (/api/v1/schema, generated now), so an endpoint
added tomorrow fails `test_every_api_operation_has_a_row` until someone writes down who may call it. Beside the API:
the payment WebSocket, the checkout and wait pages (and an order's "try another card"), the admin's payment actions
(refund, refund an amount, cancel, ask the bank now, re-queue failed jobs: every step) and the RQ dashboard. Each
cell is asked by a real caller over the real surface (no view is called directly, nothing is mocked), each in a
savepoint rolled back after it, so every caller meets the same world;
every answer that is not the cell's permitted write must leave the database (and the job queue) exactly as it was,
and no answer to a stranger may carry anything of someone else's payment.

The callers (tests/security/conftest.py, World):
  merchant       the API client (DRF token, holds refund_payment) that created the "api" payment
  payer          the guest's browser session that paid the "shop" payment through the checkout form
  other_client   another API client, holding refund_payment too
  other_shopper  another guest's browser session (with a cart and a checkout form of its own)
  anonymous      a browser with no session and no token
  staff          is_staff + view_payment only
  staff_allowed  is_staff + view_payment, refund_payment, cancel_payment, settle_payment and manage_queues

The targets: "api" (the merchant's payment), "shop" (the payer's), "guess" (random UUIDs: a payment id, and a
refund id, that exist nowhere), "-" (the operation names no payment).

The answers: an HTTP status; "open" (the socket streams the payment), "4404" (the socket is closed as not found);
"login" (redirected to the admin's login page); "no-action" (the admin re-shows its list, nothing done);
"confirm" (the admin's confirmation page, nothing done yet); "amount-form" (the admin's refund-an-amount form,
nothing done yet); "refunded", "canceled", "asked", "requeued", "emptied" (the action ran);
"own-form" (a fresh checkout form bound to the caller, nothing of the payer's).
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid

import django_rq
import pytest
from channels.testing import WebsocketCommunicator
from django.contrib.admin.models import LogEntry
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django_rq.settings import get_queues_list

from checkout.models import Order
from config.asgi import application
from payments.models import IdempotencyRecord, Payment, PaymentEvent, PaymentStatus, Refund
from payments.selectors import payment_ws_token
from payments.services.dispatch import PAYMENT_JOB, payment_job_id, payments_queue
from payments.services.refunds import refund_amount_check
from tests.integration.shop import checkout_form
from tests.security.conftest import CARD_OK, CHECKOUT_TOKEN_IN_PAGE, PAYMENT_AMOUNT, World
from webhooks.models import WebhookEndpoint
from webhooks.services import endpoint_create

# django-rq numbers its queues in the order of their names: the payments queue's page, whatever else is configured.
PAYMENTS_QUEUE_ADMIN = f"/admin/rq/queues/{[q['name'] for q in get_queues_list()].index('payments')}/"

CALLERS = ("merchant", "payer", "other_client", "other_shopper", "anonymous", "staff", "staff_allowed")
# The answers that are not an HTTP status (see the module's docstring).
LOGIN = "login"
NO_ACTION = "no-action"
CONFIRM = "confirm"
AMOUNT_FORM = "amount-form"
REFUNDED = "refunded"
CANCELED = "canceled"
ASKED = "asked"
REQUEUED = "requeued"
EMPTIED = "emptied"
OPEN = "open"
CLOSED = "4404"
OWN_FORM = "own-form"
# fmt: off
MATRIX: dict[str, dict[str, tuple]] = {
    # target   merchant  payer     other_client other_shopper anonymous staff      staff_allowed
    # --- the API: every operation of /api/v1/schema ----------------------------------------------------------
    "GET /api/v1/payments": {
        "-":      (200,      401,      200,         401,          401,      200,       200),
    },
    "POST /api/v1/payments": {
        "-":      (202,      401,      202,         401,          401,      202,       202),
    },
    "GET /api/v1/payments/{payment_id}": {
        "api":    (200,      404,      404,         404,          401,      404,       404),
        "shop":   (404,      200,      404,         404,          401,      404,       404),
        "guess":  (404,      404,      404,         404,          401,      404,       404),
    },
    "GET /api/v1/payments/{payment_id}/status": {
        "api":    (303,      404,      404,         404,          401,      404,       404),
        "shop":   (404,      303,      404,         404,          401,      404,       404),
        "guess":  (404,      404,      404,         404,          401,      404,       404),
    },
    "POST /api/v1/payments/{payment_id}/cancel": {
        "api":    (202,      404,      404,         404,          401,      404,       404),
        "shop":   (404,      202,      404,         404,          401,      404,       404),
        "guess":  (404,      404,      404,         404,          401,      404,       404),
    },
    "GET /api/v1/payments/{payment_id}/refunds": {
        "api":    (200,      404,      404,         404,          401,      404,       404),
        "shop":   (404,      200,      404,         404,          401,      404,       404),
        "guess":  (404,      404,      404,         404,          401,      404,       404),
    },
    # refunds are the merchant's: refund_payment, and only on the payments it created (a payer may not refund)
    "POST /api/v1/payments/{payment_id}/refunds": {
        "api":    (202,      401,      404,         401,          401,      403,       404),
        "shop":   (404,      401,      404,         401,          401,      403,       404),
        "guess":  (404,      401,      404,         401,          401,      403,       404),
    },
    "GET /api/v1/payments/{payment_id}/refunds/{refund_id}": {
        "api":    (200,      404,      404,         404,          401,      404,       404),
        "shop":   (404,      200,      404,         404,          401,      404,       404),
        "guess":  (404,      404,      404,         404,          401,      404,       404),
    },
    # webhook endpoints: any authenticated client, its own only (docs/webhooks.md, "Who may"); "api" is the
    # merchant's endpoint, "guess" an id that exists nowhere
    "GET /api/v1/webhook-endpoints": {
        "-":      (200,      401,      200,         401,          401,      200,       200),
    },
    "POST /api/v1/webhook-endpoints": {
        "-":      (201,      401,      201,         401,          401,      201,       201),
    },
    "GET /api/v1/webhook-endpoints/{endpoint_id}": {
        "api":    (200,      401,      404,         401,          401,      404,       404),
        "guess":  (404,      401,      404,         401,          401,      404,       404),
    },
    "PATCH /api/v1/webhook-endpoints/{endpoint_id}": {
        "api":    (200,      401,      404,         401,          401,      404,       404),
        "guess":  (404,      401,      404,         401,          401,      404,       404),
    },
    "DELETE /api/v1/webhook-endpoints/{endpoint_id}": {
        "api":    (204,      401,      404,         401,          401,      404,       404),
        "guess":  (404,      401,      404,         401,          401,      404,       404),
    },
    "POST /api/v1/webhook-endpoints/{endpoint_id}/rotate-secret": {
        "api":    (200,      401,      404,         401,          401,      404,       404),
        "guess":  (404,      401,      404,         401,          401,      404,       404),
    },
    # the document itself is public
    "GET /api/v1/schema": {
        "-":      (200,      200,      200,         200,          200,      200,       200),
    },
    "GET /api/v1/docs": {
        "-":      (200,      200,      200,         200,          200,      200,       200),
    },
    # --- the WebSocket: each caller with the best token it holds (its own payment's; none for anonymous) ---------
    "WS /ws/payments/{payment_id}?token=": {
        "api":    (OPEN,     CLOSED,   CLOSED,      CLOSED,       CLOSED,   CLOSED,    CLOSED),
        "shop":   (CLOSED,   OPEN,     CLOSED,      CLOSED,       CLOSED,   CLOSED,    CLOSED),
        "guess":  (CLOSED,   CLOSED,   CLOSED,      CLOSED,       CLOSED,   CLOSED,    CLOSED),
    },
    # --- the shop's pages (a DRF token is not a session: pages know shoppers by their session only) ------------
    "GET /checkout?checkout_token=<the payer's>": {
        "shop":   (OWN_FORM, OWN_FORM, OWN_FORM,    OWN_FORM,     OWN_FORM, OWN_FORM,  OWN_FORM),
    },
    "POST /checkout with the payer's checkout_token": {
        "shop":   (409,      202,      409,         409,          409,      409,       409),
    },
    "GET /payments/{payment_id}/wait": {
        "api":    (404,      404,      404,         404,          404,      404,       404),
        "shop":   (404,      200,      404,         404,          404,      404,       404),
        "guess":  (404,      404,      404,         404,          404,      404,       404),
    },
    # "try another card": the payer's paid order has nothing to retry, so it is sent back to its wait page
    "POST /orders/{number}/retry": {
        "shop":   (404,      302,      404,         404,          404,      404,       404),
        "guess":  (404,      404,      404,         404,          404,      404,       404),
    },
    # --- the admin: staff only; money moves only with the permission, and only after the confirmation page ---
    "GET /admin/payments/payment/": {
        "-":      (LOGIN,    LOGIN,    LOGIN,       LOGIN,        LOGIN,    200,       200),
    },
    "GET /admin/payments/payment/{payment_id}/change/": {
        "shop":   (LOGIN,    LOGIN,    LOGIN,       LOGIN,        LOGIN,    200,       200),
    },
    # the live dashboard: staff with view_payment; its socket takes the admin's session (and the page's Origin)
    "GET /admin/payments/dashboard/": {
        "-":      (LOGIN,    LOGIN,    LOGIN,       LOGIN,        LOGIN,    200,       200),
    },
    "WS /ws/staff/dashboard with the caller's cookies": {
        "-":      ("4403",   "4403",   "4403",      "4403",       "4403",   OPEN,      OPEN),
    },
    "POST admin action refund_in_full": {
        "shop":   (LOGIN,    LOGIN,    LOGIN,       LOGIN,        LOGIN,    NO_ACTION, CONFIRM),
    },
    "POST admin action refund_in_full, confirmed": {
        "shop":   (LOGIN,    LOGIN,    LOGIN,       LOGIN,        LOGIN,    NO_ACTION, REFUNDED),
    },
    "POST admin action cancel_pending": {
        "shop":   (LOGIN,    LOGIN,    LOGIN,       LOGIN,        LOGIN,    NO_ACTION, CONFIRM),
    },
    "POST admin action cancel_pending, confirmed": {
        "shop":   (LOGIN,    LOGIN,    LOGIN,       LOGIN,        LOGIN,    NO_ACTION, CANCELED),
    },
    "POST admin action refund_amount": {
        "shop":   (LOGIN,    LOGIN,    LOGIN,       LOGIN,        LOGIN,    NO_ACTION, AMOUNT_FORM),
    },
    "POST admin action refund_amount, reviewed": {
        "shop":   (LOGIN,    LOGIN,    LOGIN,       LOGIN,        LOGIN,    NO_ACTION, CONFIRM),
    },
    "POST admin action refund_amount, confirmed": {
        "shop":   (LOGIN,    LOGIN,    LOGIN,       LOGIN,        LOGIN,    NO_ACTION, REFUNDED),
    },
    "POST admin action ask_bank_now": {
        "shop":   (LOGIN,    LOGIN,    LOGIN,       LOGIN,        LOGIN,    NO_ACTION, CONFIRM),
    },
    "POST admin action ask_bank_now, confirmed": {
        "shop":   (LOGIN,    LOGIN,    LOGIN,       LOGIN,        LOGIN,    NO_ACTION, ASKED),
    },
    "POST admin action requeue_failed_jobs": {
        "shop":   (LOGIN,    LOGIN,    LOGIN,       LOGIN,        LOGIN,    NO_ACTION, CONFIRM),
    },
    "POST admin action requeue_failed_jobs, confirmed": {
        "shop":   (LOGIN,    LOGIN,    LOGIN,       LOGIN,        LOGIN,    NO_ACTION, REQUEUED),
    },
    # --- the RQ dashboard: manage_queues (or a superuser) -------------------------------------------------------
    "GET /admin/rq/": {
        "-":      (LOGIN,    LOGIN,    LOGIN,       LOGIN,        LOGIN,    403,       200),
    },
    f"GET {PAYMENTS_QUEUE_ADMIN}": {
        "-":      (LOGIN,    LOGIN,    LOGIN,       LOGIN,        LOGIN,    403,       200),
    },
    "GET /admin/rq/workers/0/": {
        "-":      (LOGIN,    LOGIN,    LOGIN,       LOGIN,        LOGIN,    403,       200),
    },
    "GET /admin/rq/stats.json": {
        "-":      (LOGIN,    LOGIN,    LOGIN,       LOGIN,        LOGIN,    403,       200),
    },
    f"POST {PAYMENTS_QUEUE_ADMIN}empty/": {
        "-":      (LOGIN,    LOGIN,    LOGIN,       LOGIN,        LOGIN,    403,       EMPTIED),
    },
    # --- probes and metrics: probes are public; metrics take a staff session (or the metrics bearer token, which
    # no caller here holds: an API token is not it) -------------------------------------------------------------
    "GET /healthz": {
        "-":      (200,      200,      200,         200,          200,      200,       200),
    },
    "GET /metrics": {
        "-":      (401,      401,      401,         401,          401,      200,       200),
    },
}
# fmt: on
EXPECTED: dict[tuple[str, str], dict[str, object]] = {
    (what, target): dict(zip(CALLERS, answers, strict=True))
    for what, rows in MATRIX.items()
    for target, answers in rows.items()
}
# The answers that are the cell's permitted write; every other answer must leave the database as it was.
WRITES = {202, REFUNDED, CANCELED, ASKED, REQUEUED, EMPTIED}
# The webhook endpoint rows whose owner's 200/201/204 is a permitted write (to its own endpoints).
WEBHOOK_WRITES = {
    "POST /api/v1/webhook-endpoints",
    "PATCH /api/v1/webhook-endpoints/{endpoint_id}",
    "DELETE /api/v1/webhook-endpoints/{endpoint_id}",
    "POST /api/v1/webhook-endpoints/{endpoint_id}/rotate-secret",
}
# Who owns which target (for "a stranger learns nothing" and "a stranger's answer carries nothing of it").
OWNER = {"api": "merchant", "shop": "payer"}
PAYMENT_ID_SURFACES = ("/api/v1/payments/{payment_id}", "WS ", "/wait", "/retry")


def _is_socket(what: str) -> bool:
    return what.startswith("WS ")


# --- the table covers everything, and says what it claims ---------------------------------------------------


def _schema_operations() -> set[str]:
    document = Client().get("/api/v1/schema?format=json").json()
    methods = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
    return {
        f"{method.upper()} {path}" for path, item in document["paths"].items() for method in item if method in methods
    }


def test_every_api_operation_has_a_row(db):
    # given: the OpenAPI document as the app serves it now
    operations = _schema_operations()
    assert len(operations) >= 8, operations
    # then: every operation has its rows, with every target its path can name; and no row names an operation
    # the API no longer has
    rows = {what for what in MATRIX if what.split(" ", 1)[1].startswith(("/api/v1/payments", "/api/v1/webhook-"))}
    assert operations - rows == set(), "operations with no row in MATRIX: who may call them?"
    assert rows - operations == set(), "rows for operations the OpenAPI document does not have"
    for operation in operations:
        targets = set(MATRIX[operation])
        wanted = {"api", "shop", "guess"} if "{payment_id}" in operation else {"-"}
        wanted = {"api", "guess"} if "{endpoint_id}" in operation else wanted
        assert targets == wanted, (operation, targets)


def test_a_stranger_cannot_tell_someone_elses_payment_from_one_that_does_not_exist():
    # The table itself: wherever a payment id is asked about, everyone but its owner gets exactly what they get
    # for a random id.
    for (what, target), answers in EXPECTED.items():
        if target not in OWNER or not any(surface in what for surface in PAYMENT_ID_SURFACES):
            continue
        guessed = EXPECTED[(what, "guess")]
        for caller, answer in answers.items():
            if caller != OWNER[target]:
                assert answer == guessed[caller], (what, target, caller)


# --- asking -----------------------------------------------------------------------------------------------------


def _target_ids(world: World, target: str) -> tuple[str, str]:
    if target == "api":
        refund = getattr(world, "api_refund", None)
        return str(world.api_payment.pk), str(refund.pk if refund else uuid.uuid4())
    if target == "shop":
        refund = getattr(world, "shop_refund", None)
        return str(world.shop_payment.pk), str(refund.pk if refund else uuid.uuid4())
    return str(uuid.uuid4()), str(uuid.uuid4())


def _snapshot(world: World) -> tuple:
    payments = Payment.objects.filter(pk__in=[world.api_payment.pk, world.shop_payment.pk]).order_by("pk")
    return (
        Payment.objects.count(),
        Refund.objects.count(),
        PaymentEvent.objects.count(),
        Order.objects.count(),
        IdempotencyRecord.objects.count(),
        LogEntry.objects.count(),
        list(WebhookEndpoint.objects.order_by("pk").values_list("pk", "url", "events", "enabled", "secret")),
        django_rq.get_queue("payments").count,
        [(p.status, p.seq, p.amount_refunded) for p in payments],
    )


def _is_login_redirect(response) -> bool:
    return response.status_code == 302 and response["Location"].startswith("/admin/login/")


def merchant_endpoint(world: World) -> WebhookEndpoint:
    """The merchant's webhook endpoint (the "api" target of the webhook rows)."""
    endpoint = WebhookEndpoint.objects.filter(owner=world.merchant_user).first()
    return endpoint or endpoint_create(owner=world.merchant_user, url="http://127.0.0.1:9/hooks", events=["*"])


def _api(world: World, caller, what: str, target: str):
    method, template = what.split(" ", 1)
    payment_id, refund_id = _target_ids(world, target)
    path = template.replace("{payment_id}", payment_id).replace("{refund_id}", refund_id)
    if "{endpoint_id}" in path:
        endpoint_id = str(merchant_endpoint(world).pk) if target == "api" else str(uuid.uuid4())
        path = path.replace("{endpoint_id}", endpoint_id)
    if method == "GET":
        return caller.get(path)
    if method in ("PATCH", "DELETE"):
        send = caller.client.patch if method == "PATCH" else caller.client.delete
        body = {"enabled": False} if method == "PATCH" else None
        return send(path, body, content_type="application/json", HTTP_X_CSRFTOKEN=caller.csrf)
    if path == "/api/v1/webhook-endpoints":
        return caller.post_json(path, {"url": "http://127.0.0.1:9/theirs", "events": ["*"]})
    key = {"HTTP_IDEMPOTENCY_KEY": str(uuid.uuid4())}
    if path == "/api/v1/payments":
        return caller.post_json(path, {"amount": PAYMENT_AMOUNT, "currency": "USD", "card": CARD_OK}, **key)
    if path.endswith("/refunds"):
        return caller.post_json(path, {}, **key)
    return caller.post_json(path)


REFUND_AMOUNT_TYPED = ("1.00", 100)  # what the staff user types into the refund-an-amount form, in minor units


def _admin_action(world: World, caller, what: str):
    action = what.split()[3].rstrip(",")
    payment = world.shop_payment
    pk = payment.pk
    data = {"action": action, "index": "0", "_selected_action": [str(pk)]}
    if what.endswith("reviewed"):
        data |= {"step": "review", f"refund_amount-{pk}": REFUND_AMOUNT_TYPED[0]}
    if what.endswith("confirmed"):
        data["post"] = "yes"
        if action == "refund_in_full":
            data[f"confirmed_amount-{pk}"] = str(refund_amount_check(payment))
        elif action == "cancel_pending":
            data[f"confirmed_amount-{pk}"] = str(payment.amount)
        elif action == "refund_amount":
            data[f"confirmed_amount-{pk}"] = str(REFUND_AMOUNT_TYPED[1])
            data[f"refundable_seen-{pk}"] = str(refund_amount_check(payment))
        elif action == "ask_bank_now":
            data[f"confirmed-{pk}"] = payment.status
        else:
            data[f"confirmed-{pk}"] = payment_job_id(pk)
    entries = LogEntry.objects.filter(object_id=str(pk))
    before = (Refund.objects.filter(payment=payment).count(), Payment.objects.get(pk=pk).status, entries.count())
    response = caller.post_form("/admin/payments/payment/", data)
    if _is_login_redirect(response) or response.status_code >= 400:
        return response, LOGIN if response.status_code == 302 else response.status_code
    templates = [t.name for t in response.templates]
    if "admin/payments/payment/action_confirmation.html" in templates:
        return response, CONFIRM
    if "admin/payments/payment/refund_amount_form.html" in templates:
        return response, AMOUNT_FORM
    after = (Refund.objects.filter(payment=payment).count(), Payment.objects.get(pk=pk).status, entries.count())
    if after[0] > before[0]:
        return response, REFUNDED
    if after[1] == PaymentStatus.CANCELED != before[1]:
        return response, CANCELED
    if after[2] > before[2]:
        latest = entries.order_by("-pk").first().change_message
        if latest.startswith("Asked the bank now"):
            return response, ASKED
        if latest.startswith("Re-queued failed job"):
            return response, REQUEUED
    return response, NO_ACTION


def _ask(world: World, caller, what: str, target: str):
    """(the response, the answer as the table writes it)"""
    if what.split(" ", 1)[1].startswith("/api/v1/"):
        response = _api(world, caller, what, target)
        return response, response.status_code
    if what.startswith("GET /checkout"):
        caller.add_to_cart(world.product)
        response = caller.get(f"/checkout?checkout_token={world.shop_checkout_token}")
        token = CHECKOUT_TOKEN_IN_PAGE.search(response.text) if response.status_code == 200 else None
        fresh = token is not None and token.group(1) != world.shop_checkout_token
        return response, OWN_FORM if fresh else response.status_code
    if what.startswith("POST /checkout"):
        form = checkout_form("4242424242424242", cvc="123", token=world.shop_checkout_token)
        response = caller.post_form("/checkout", form, HTTP_ACCEPT="application/json")
        return response, response.status_code
    if what.endswith("/wait"):
        response = caller.get(f"/payments/{_target_ids(world, target)[0]}/wait")
        return response, response.status_code
    if what.endswith("/retry"):
        number = world.shop_payment.order.number if target == "shop" else uuid.uuid4().hex[:12].upper()
        response = caller.post_form(f"/orders/{number}/retry", {})
        return response, response.status_code
    if what.startswith("POST admin action"):
        return _admin_action(world, caller, what)
    method, path = what.split(" ", 1)
    path = path.replace("{payment_id}", str(world.shop_payment.pk))
    if method == "POST":
        response = caller.post_form(path, {"post": "yes"})
        if response.status_code == 302 and not _is_login_redirect(response):
            return response, EMPTIED if django_rq.get_queue("payments").count == 0 else response.status_code
    else:
        response = caller.get(path)
    return response, LOGIN if _is_login_redirect(response) else response.status_code


def _carries_nothing_of_others(world: World, caller_name: str, content: bytes) -> list[str]:
    """Someone else's payment shows through its WebSocket token or its exact creation time (the id alone is no
    secret here: a problem document echoes the path that was asked)."""
    leaks = []
    for target, owner in OWNER.items():
        payment = world.api_payment if target == "api" else world.shop_payment
        if caller_name == owner:
            continue
        for secret in (payment_ws_token(payment), payment.created_at.isoformat()):
            if secret.encode() in content:
                leaks.append(f"{caller_name} was shown the {target} payment's {secret[:20]}…")
    return leaks


def _state_for(what: str) -> str:
    return "pending" if any(name in what for name in ("cancel", "ask_bank_now", "requeue_failed_jobs")) else "paid"


def _fail_the_shop_payments_job(world: World) -> None:
    """The shop payment's job in the failed job registry, as a worker leaves a job that raised; nothing else queued."""
    queue = payments_queue()
    queue.empty()
    queue.failed_job_registry.remove(payment_job_id(world.shop_payment.pk))
    job = queue.create_job(
        PAYMENT_JOB, args=(str(world.shop_payment.pk),), job_id=payment_job_id(world.shop_payment.pk)
    )
    job.save()
    queue.failed_job_registry.add(job, ttl=3600)


def _ask_everyone(world: World, what: str, target: str) -> tuple[dict, list[str]]:
    """Every caller asks, each in a savepoint rolled back afterwards, so each meets the same world; an answer
    that is not the cell's permitted write must not have written anything."""
    answers, problems = {}, []
    secret = merchant_endpoint(world).secret if "/webhook-" in what else None
    for name in CALLERS:
        rollback = transaction.savepoint()
        if what == f"POST {PAYMENTS_QUEUE_ADMIN}empty/":
            queue = django_rq.get_queue("payments")
            queue.empty()
            queue.enqueue("payments.jobs.payment_process_job", str(uuid.uuid4()))
        if "requeue_failed_jobs" in what:
            _fail_the_shop_payments_job(world)
        before = _snapshot(world)
        response, answers[name] = _ask(world, world.callers[name], what, target)
        permitted = answers[name] in WRITES or (what in WEBHOOK_WRITES and answers[name] in (200, 201, 204))
        if not permitted and _snapshot(world) != before:
            problems.append(
                f"{what} [{target}] {name}: answered {answers[name]} but wrote: {before} -> {_snapshot(world)}"
            )
        if what.split(" ", 1)[1].startswith(("/api/v1/payments", "/checkout", "/payments/", "/orders/")):
            problems += [
                f"{what} [{target}] {leak}" for leak in _carries_nothing_of_others(world, name, response.content)
            ]
            is_problem = response.get("Content-Type") == "application/problem+json"
            if 400 <= response.status_code < 500 and "/api/v1/" in what and not is_problem:
                problems.append(f"{what} [{target}] {name}: {response.status_code} is not a problem document")
        if secret is not None and secret.encode() in response.content:
            problems.append(f"{what} [{target}] {name}: was shown the merchant's webhook secret")
        transaction.savepoint_rollback(rollback)
    return answers, problems


@pytest.mark.parametrize("state", ["paid", "pending"])
def test_http_authorization_matrix(world_factory, state):
    # given: one world, the payments in the state the rows' operations act on (cancel: pending; the rest: paid)
    world = world_factory(state)
    rows = [(what, target) for what, target in EXPECTED if not _is_socket(what) and _state_for(what) == state]
    # when: every caller asks every row
    answers, problems = {}, []
    for what, target in rows:
        answers[(what, target)], found = _ask_everyone(world, what, target)
        problems += found
    # then
    assert answers == {row: EXPECTED[row] for row in rows}
    assert problems == []


def test_the_api_list_shows_each_client_its_own_payments_only(world_factory):
    world = world_factory("paid")
    listed = {
        name: {item["id"] for item in world.callers[name].get("/api/v1/payments").json()["results"]}
        for name in ("merchant", "other_client", "staff", "staff_allowed")
    }
    assert listed["merchant"] == {str(world.api_payment.pk)}
    assert str(world.api_payment.pk) not in listed["other_client"] | listed["staff"] | listed["staff_allowed"]
    assert str(world.shop_payment.pk) not in set().union(*listed.values())


def test_the_foreign_checkout_answers_name_the_foreign_form_and_the_payers_replay_is_the_same_payment(world_factory):
    world = world_factory("paid")
    form = checkout_form("4242424242424242", cvc="123", token=world.shop_checkout_token)
    replay = world.payer.post_form("/checkout", form, HTTP_ACCEPT="application/json")
    foreign = world.other_shopper.post_form("/checkout", form, HTTP_ACCEPT="application/json")
    assert replay.json()["payment_id"] == str(world.shop_payment.pk)
    assert foreign.json()["code"] == "foreign_checkout_form"


# --- the WebSocket ------------------------------------------------------------------------------------------------


async def _socket_answer(path: str, payment_id: str) -> str:
    socket = WebsocketCommunicator(application, path)
    connected, _ = await socket.connect(timeout=5)
    if not connected:
        return "refused"
    frame = await socket.receive_output(timeout=5)
    await socket.disconnect()
    if frame["type"] == "websocket.close":
        return str(frame.get("code"))
    document = json.loads(frame["text"])["payment"]
    return OPEN if document["id"] == payment_id else f"streamed another payment: {document['id']}"


async def _dashboard_socket_answer(caller) -> str:
    cookies = "; ".join(f"{name}={morsel.value}" for name, morsel in caller.client.cookies.items())
    headers = [(b"origin", b"http://testserver"), (b"cookie", cookies.encode())]
    socket = WebsocketCommunicator(application, "/ws/staff/dashboard", headers=headers)
    connected, _ = await socket.connect(timeout=5)
    if not connected:
        return "refused"
    frame = await socket.receive_output(timeout=5)
    await socket.disconnect()
    if frame["type"] == "websocket.close":
        return str(frame.get("code"))
    return OPEN if json.loads(frame["text"])["type"] == "dashboard.figures" else f"sent {frame['text'][:80]}"


@pytest.mark.django_db(transaction=True)
def test_websocket_authorization_matrix():
    # given: committed data (the consumer reads it on a thread of its own)
    world = World("paid")
    rows = [(what, target) for what, target in EXPECTED if _is_socket(what)]

    # when: each caller opens each target's socket with the best token it holds
    async def everyone() -> dict:
        answers = {}
        for what, target in rows:
            if what.startswith("WS /ws/staff/dashboard"):
                answers[(what, target)] = {
                    name: await _dashboard_socket_answer(caller) for name, caller in world.callers.items()
                }
                continue
            payment_id = _target_ids(world, target)[0]
            answers[(what, target)] = {
                name: await _socket_answer(f"/ws/payments/{payment_id}?token={caller.ws_token}", payment_id)
                for name, caller in world.callers.items()
            }
        return answers

    # then
    assert asyncio.run(everyone()) == {row: EXPECTED[row] for row in rows}


# --- the RQ dashboard: every route django-rq has, not only the table's samples ----------------------------------


def _dashboard_paths() -> list[str]:
    resolver = next(
        p for p in get_resolver().url_patterns if isinstance(p, URLResolver) and str(p.pattern) == "admin/rq/"
    )
    paths = []
    for pattern in resolver.url_patterns:
        assert isinstance(pattern, URLPattern)
        route = re.sub(r"\(\?P<\w+>[^)]*\)\??", "x", str(pattern.pattern))  # a regex route's named group
        route = route.lstrip("^").rstrip("$").replace("/?", "/")
        route = route.replace("<int:queue_index>", PAYMENTS_QUEUE_ADMIN.split("/")[-2])  # the queue whose job stays
        route = re.sub(r"<int:\w+>", "0", route)
        route = re.sub(r"<(str|path):\w+>", "x", route)
        paths.append("/admin/rq/" + route.replace("\\", ""))
    return sorted(set(paths))


def test_every_rq_dashboard_route_needs_the_queue_permission(world_factory):
    # given: a job waiting in the payments queue
    world = world_factory("pending")
    queue = django_rq.get_queue("payments")
    queue.enqueue("payments.jobs.payment_process_job", str(uuid.uuid4()))
    paths = _dashboard_paths()
    assert len(paths) >= 20 and f"{PAYMENTS_QUEUE_ADMIN}empty/" in paths
    # when: every route django-rq has is asked, and posted to, by non-staff callers and by view-only staff
    answers = {}
    for path in paths:
        for name in ("anonymous", "payer", "merchant", "staff"):
            caller = world.callers[name]
            for method, response in (("GET", caller.get(path)), ("POST", caller.post_form(path, {"post": "yes"}))):
                answers[(method, path, name)] = LOGIN if _is_login_redirect(response) else response.status_code
    # then: the login page for those who are not staff, 403 for staff without manage_queues; the job is still there
    expected = {(method, path, name): 403 if name == "staff" else LOGIN for method, path, name in answers}
    assert answers == expected
    assert queue.count == 1
