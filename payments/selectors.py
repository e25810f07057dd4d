"""Reads. `payment_status_payload` is the one status document that the status URL, the WebSocket and the
wait page all send, so no two channels can disagree about a payment."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.urls import reverse

from payments.gateway import release_database_connection
from payments.models import Payment, PaymentStatus, Refund

WS_TOKEN_SALT = "payments.websocket"  # noqa: S105 - a signing namespace, not a secret


def payment_ws_token(payment: Payment, *, valid_from: float | None = None, watch_only: bool = False) -> str:
    """A credential to subscribe to one payment's updates, valid PAYMENTS_WS_TOKEN_TTL after `valid_from`.

    By default `valid_from` is the payment's creation: deterministic for a payment, so the status document stays
    the same until the payment changes. A page that someone may open long after paying (the order page behind its
    signed link) mints one from the time it is rendered instead.

    `watch_only`: for someone who may watch the payment but is not its payer (whoever an order link was forwarded
    to). Their socket's documents never carry `next_action`, the bank's page where the cardholder confirms the
    payment (payment_document_for_watcher).
    """
    start = payment.created_at.timestamp() if valid_from is None else valid_from
    claims = {"p": str(payment.id), "e": int(start) + settings.PAYMENTS_WS_TOKEN_TTL}
    if watch_only:
        claims["w"] = 1
    # Signer, not signing.dumps: the latter stamps the signing time, which would change the token (and so the
    # status document) every second.
    return signing.Signer(salt=WS_TOKEN_SALT).sign_object(claims)


@dataclass(frozen=True)
class SocketGrant:
    payment_id: str
    watch_only: bool


def payment_ws_token_read(token: str, *, now: float) -> SocketGrant | None:
    """What a socket token grants, or None for one we did not sign or that has expired."""
    try:
        claims = signing.Signer(salt=WS_TOKEN_SALT).unsign_object(token)
    except signing.BadSignature:
        return None
    if not isinstance(claims, dict) or claims.get("e", 0) < now or not isinstance(claims.get("p"), str):
        return None
    return SocketGrant(payment_id=claims["p"], watch_only=bool(claims.get("w")))


def payment_id_from_ws_token(token: str, *, now: float) -> str | None:
    grant = payment_ws_token_read(token, now=now)
    return grant.payment_id if grant is not None else None


def payment_document_for_watcher(document: dict, *, socket_path: str) -> dict:
    """The status document as a watcher sees it: without `next_action` (the bank's page, which is the cardholder's
    to open), and with the watcher's own socket in place of the payer's."""
    links = {**document.get("links", {}), "websocket": socket_path}
    return {**document, "next_action": None, "links": links}


def _api_path(name: str, **kwargs) -> str:
    return reverse(f"payments-api:{name}", kwargs=kwargs)


def payment_status_payload(payment: Payment) -> dict:
    failure = None
    if payment.failure_code:
        failure = {
            "code": payment.failure_code,
            "decline_code": payment.decline_code or None,
            "message": payment.failure_message,
        }
    return {
        "id": str(payment.id),
        "status": payment.status,
        "has_outcome": payment.has_outcome,
        "amount": payment.amount,
        "amount_refunded": payment.amount_refunded,
        "currency": payment.currency,
        "card": {
            "brand": payment.card_brand,
            "last4": payment.card_last4,
            "exp_month": payment.card_exp_month,
            "exp_year": payment.card_exp_year,
        },
        "failure": failure,
        "next_action": payment_next_action(payment),
        "seq": payment.seq,
        "created_at": payment.created_at.isoformat(),
        "updated_at": payment.updated_at.isoformat(),
        "links": {
            "self": _api_path("payment-detail", payment_id=payment.id),
            "status": _api_path("payment-status", payment_id=payment.id),
            "cancel": _api_path("payment-cancel", payment_id=payment.id),
            "refunds": _api_path("payment-refunds", payment_id=payment.id),
            "websocket": f"/ws/payments/{payment.id}?token={payment_ws_token(payment)}",
        },
    }


def payment_next_action(payment: Payment) -> dict | None:
    """What the shopper must do for the payment to go on, while it waits for them (requires_action): go to their
    bank's page (3-D Secure). Stripe's shape; `expires_at` is when we stop waiting (PAYMENTS_ACTION_TIMEOUT)."""
    if payment.status != PaymentStatus.REQUIRES_ACTION or not payment.next_action_url:
        return None
    expires_at = payment.next_action_expires_at
    return {
        "type": "redirect_to_url",
        "url": payment.next_action_url,
        "expires_at": expires_at.isoformat() if expires_at else None,
    }


def payment_status_document_read(payment_id) -> dict | None:
    """The status document as the database holds it now, for a client that waits (the WebSocket consumer, the
    long-poll), or None if there is no such payment. Its database connection goes back before it returns: a
    waiter must hold none while it waits (under `make chaos` a few dozen waiting long-polls held a whole pool,
    and sockets' reads kept one each; docs/reliability.md). Synchronous: callers run it on a thread."""
    try:
        payment = Payment.objects.filter(pk=payment_id).first()
        return payment_status_payload(payment) if payment is not None else None
    finally:
        release_database_connection()


def status_etag(payment_id, seq: int) -> str:
    # The document changes only with seq (every change is a transition), so seq names its version.
    return f'"{payment_id}.{seq}"'


def refund_payload(refund: Refund) -> dict:
    failure = {"code": refund.failure_code, "message": refund.failure_message} if refund.failure_code else None
    return {
        "id": str(refund.id),
        "payment_id": str(refund.payment_id),
        "status": refund.status,
        "amount": refund.amount,
        "currency": refund.payment.currency,
        "reason": refund.reason,
        "failure": failure,
        "created_at": refund.created_at.isoformat(),
        "updated_at": refund.updated_at.isoformat(),
        "links": {
            "self": _api_path("refund-detail", payment_id=refund.payment_id, refund_id=refund.id),
            "payment": _api_path("payment-detail", payment_id=refund.payment_id),
        },
    }


def payment_detail_payload(payment: Payment) -> dict:
    """The full resource: the status document plus what was asked for, the timeline and the refunds."""
    events = payment.events.order_by("seq")
    return {
        **payment_status_payload(payment),
        "description": payment.description,
        "metadata": payment.metadata,
        "amount_captured": payment.amount_captured,
        "events": [
            {
                "seq": event.seq,
                "from_status": event.from_status or None,
                "to_status": event.to_status,
                "actor": event.actor,
                "reason": event.reason,
                "at": event.created_at.isoformat(),
            }
            for event in events
        ],
        "refunds": [refund_payload(refund) for refund in payment.refunds.select_related("payment")],
    }


def payment_list_for_owner(*, owner_user):
    """The payments an API client made, newest first once paginated (the list's filters narrow it)."""
    return Payment.objects.filter(owner_user=owner_user)


def payment_get_for_viewer(*, payment_id, user=None, guest_id=None) -> Payment | None:
    """The payment if this viewer owns it, else None: callers answer 404 either way, so a stranger
    cannot learn that a payment id exists."""
    if user is not None and user.is_authenticated:
        found = Payment.objects.filter(pk=payment_id, owner_user=user).first()
        if found is not None:
            return found
    if guest_id:
        return Payment.objects.filter(pk=payment_id, owner_guest_id=guest_id).first()
    return None
