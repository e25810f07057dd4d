"""POST /gateway/callbacks: where the gateway tells us something happened on its side, as a real provider does
(a webhook). Today one event: `charge.authentication_answered`, the cardholder has answered a 3-D Secure
challenge.

The signature is checked before anything is read (payments/callback_signature.py): a callback that does not
verify is refused with a 400 problem and changes nothing. One that does is still only a hint: it names a charge
key, and the job it queues asks the bank itself what became of that charge (payments.services.actions), so even a
forged callback under a stolen secret could not make a payment succeed; it could only make us ask the bank.
Answered 200 for a key we do not know, or a payment already final, so the gateway stops re-sending it.
"""

from __future__ import annotations

import json

import structlog
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from infrastructure.problems import problem_json
from payments.callback_signature import SIGNATURE_HEADER, SignatureInvalid, callback_signature_verify
from payments.services.actions import payment_action_reported, payment_id_for_gateway_key

logger = structlog.get_logger(__name__)

AUTHENTICATION_ANSWERED = "charge.authentication_answered"


class CallbackRefused(Exception):
    def __init__(self, code: str, detail: str):
        super().__init__(detail)
        self.code = code
        self.detail = detail


def gateway_callback_receive(*, body: bytes, signature: str | None) -> dict:
    """Verify and act on one callback; what its HTTP answer says. The sandbox bank delivers through here too
    (payments.sandbox.challenge), so every delivery is verified the way an HTTP one is."""
    try:
        callback_signature_verify(body, signature)
    except SignatureInvalid as error:
        logger.warning("gateway callback refused: bad signature", reason=str(error))
        raise CallbackRefused("callback_signature_invalid", "The callback's signature does not verify.") from None
    try:
        event = json.loads(body)
    except ValueError:
        raise CallbackRefused("parse_error", "The callback's body is not JSON.") from None
    if not isinstance(event, dict) or not isinstance(event.get("idempotency_key"), str):
        raise CallbackRefused("parse_error", "The callback names no charge (idempotency_key).")
    if event.get("type") != AUTHENTICATION_ANSWERED:
        logger.info("gateway callback ignored: not an event we act on", type=str(event.get("type"))[:64])
        return {"received": True, "acted": False}
    payment_id = payment_id_for_gateway_key(event["idempotency_key"])
    if payment_id is None:
        logger.warning("gateway callback for a charge key we do not know")
        return {"received": True, "acted": False}
    return {"received": True, "acted": payment_action_reported(payment_id=payment_id)}


# The gateway signs what it sends; no browser session is involved, so there is no CSRF to guard against.
@csrf_exempt
def gateway_callback(request) -> HttpResponse:
    if request.method != "POST":
        return problem_json(
            status=405,
            code="method_not_allowed",
            detail=f'Method "{request.method}" not allowed: use POST.',
            instance=request.path,
            headers={"Allow": "POST"},
        )
    try:
        answer = gateway_callback_receive(body=request.body, signature=request.headers.get(SIGNATURE_HEADER))
    except CallbackRefused as refused:
        return problem_json(status=400, code=refused.code, detail=refused.detail, instance=request.path)
    return JsonResponse(answer)
