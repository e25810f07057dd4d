"""The sandbox bank's 3-D Secure challenge: the cardholder's answer, and the callback that tells the merchant.

A real provider's page is on its own site and calls the merchant's webhook over HTTP, later and perhaps more than
once. The sandbox bank lives in our processes, so it delivers in-process, right after the answer commits, through
the very function our HTTP endpoint calls (payments.callbacks.gateway_callback_receive) with a signed body: the
signature check runs on every delivery, as it would on a provider's. A delivery that fails is only logged: the
payment is not stuck, the reconciler's deadline asks the bank (charge_abandon), which then answers with the
authenticated charge, and the payment resumes.
"""

from __future__ import annotations

import json
from functools import partial

import structlog
from django.db import transaction
from django.utils import timezone

from payments.callback_signature import callback_signature
from payments.callbacks import AUTHENTICATION_ANSWERED, CallbackRefused, gateway_callback_receive
from payments.sandbox.models import Authentication

logger = structlog.get_logger(__name__)


def authentication_answer(*, public_id: str, authenticated: bool) -> tuple[Authentication, bool]:
    """Record the cardholder's answer, once. Returns the authentication and whether this call answered it (False:
    answered before, or voided by the merchant: the bank keeps its first word)."""
    with transaction.atomic():
        # The lock charge_abandon takes: a void and an answer cannot both win.
        authentication = Authentication.objects.select_for_update().get(public_id=public_id)
        if authentication.status != Authentication.Status.PENDING:
            return authentication, False
        authentication.status = Authentication.Status.SUCCEEDED if authenticated else Authentication.Status.FAILED
        authentication.answered_at = timezone.now()
        authentication.save(update_fields=["status", "answered_at"])
        transaction.on_commit(partial(authentication_callback_deliver, authentication))
    return authentication, True


def authentication_callback_body(authentication: Authentication) -> bytes:
    # The key names the charge; the challenge's public id (a credential) is never sent.
    return json.dumps(
        {
            "type": AUTHENTICATION_ANSWERED,
            "idempotency_key": authentication.idempotency_key,
            "authentication": authentication.reference,
            "result": authentication.status,
            "created": int(timezone.now().timestamp()),
        },
        separators=(",", ":"),
    ).encode()


def authentication_callback_deliver(authentication: Authentication) -> None:
    body = authentication_callback_body(authentication)
    try:
        gateway_callback_receive(body=body, signature=callback_signature(body))
    except (CallbackRefused, Exception):
        logger.exception("sandbox bank: the callback was not delivered", authentication=authentication.reference)
