"""The interface between our payment service and a bank/gateway, and how the configured one is found.

A real provider's adapter implements `PaymentGateway`; the sandbox bank (payments.sandbox) is ours.
Callers must never hold a database transaction or row lock across these calls: they are slow network calls
that may time out.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cache
from typing import Protocol

import structlog
from django.conf import settings
from django.db import connection
from django.utils.module_loading import import_string

from payments.cards import CardDetails


@dataclass(frozen=True)
class CardToken:
    token: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int


@dataclass(frozen=True)
class ChargeResult:
    """The bank's answer to a charge: approved, declined (decline_code), or neither yet: the cardholder must
    authenticate first (3-D Secure), at `next_action_url`. That third answer is not final: the same call with the
    same idempotency key, once the cardholder has answered, completes the charge (or declines it,
    authentication_failed)."""

    approved: bool
    reference: str
    decline_code: str = ""
    next_action_url: str = ""

    @property
    def requires_action(self) -> bool:
        return bool(self.next_action_url)


@dataclass(frozen=True)
class RefundResult:
    approved: bool
    reference: str
    failure_code: str = ""


class GatewayError(Exception):
    """The gateway did not give an answer we can act on."""


class GatewayUnavailable(GatewayError):
    """The call did not reach the bank, so nothing happened there; safe to retry with the same key."""


class GatewayTimeout(GatewayError):
    """The call may have reached the bank but its answer did not come back: the outcome is unknown until the
    key's outcome is asked for."""


class PaymentGateway(Protocol):
    """Every money-moving call carries an idempotency key; the bank acts at most once per key and answers a
    repeated call with the first result. Calls may raise GatewayUnavailable or GatewayTimeout."""

    def tokenize(self, card: CardDetails) -> CardToken: ...

    def charge(
        self, *, token: str, amount: int, currency: str, idempotency_key: str, return_url: str = ""
    ) -> ChargeResult:
        """`return_url`: where the bank's authentication page sends the shopper back, if it asks for one."""
        ...

    def charge_outcome(self, *, idempotency_key: str) -> ChargeResult | None:
        """What the bank did for this key (a charge waiting for the cardholder included), or None if it has no
        record of it."""
        ...

    def charge_abandon(self, *, idempotency_key: str, decline_code: str) -> ChargeResult | None:
        """Give up a charge that waits for the cardholder: the bank voids the authentication and records the key
        as declined with `decline_code`, so no later call can charge it. If the cardholder has already answered,
        nothing is voided and the charge completes as any call with the key would (approved, or declined
        authentication_failed). None if the bank knows nothing of the key."""
        ...

    def refund(self, *, charge_reference: str, amount: int, idempotency_key: str) -> RefundResult: ...

    def refund_outcome(self, *, idempotency_key: str) -> RefundResult | None: ...


# What the shopper reads for each decline code (the status document's `failure.message`, the wait page). Shopper
# words only: never a rule of ours, and for a card reported lost or stolen or a payment that looks fraudulent, no
# more than "declined" (the person at the keyboard may not be the card's holder, and a fraudster learns nothing
# to work around). Staff and the API keep the precise `decline_code`, and the event log the risk rule.
# Gateways map their own codes onto these.
DECLINED_ASK_YOUR_BANK = "Your card was declined. Please try another card, or contact your bank."
DECLINE_MESSAGES = {
    "card_declined": "Your card was declined by your bank.",
    "insufficient_funds": "Your card has insufficient funds.",
    "expired_card": "Your card has expired.",
    "incorrect_cvc": "The security code (CVC) is incorrect.",
    "lost_card": DECLINED_ASK_YOUR_BANK,
    "stolen_card": DECLINED_ASK_YOUR_BANK,
    "fraudulent": DECLINED_ASK_YOUR_BANK,
    "processing_error": "We could not reach your bank. No money was taken.",
    "amount_limit": "This amount is above what we can take in one payment.",
    "velocity_limit": "Too many payments with this card in a short time. Please try again later.",
    "authentication_failed": "Your bank could not confirm it was you. Try again, or use another card.",
    "authentication_expired": "The confirmation with your bank took too long.",
    "payment_canceled": "The payment was canceled before your bank confirmed it. No money was taken.",
}


def decline_message(code: str) -> str:
    return DECLINE_MESSAGES.get(code, DECLINE_MESSAGES["card_declined"])


logger = structlog.get_logger(__name__)


class LoggedGateway:
    """The configured gateway, with one log line per call: the operation, how long it took, and what came back
    (approved or not, the reference, the decline code) or what was raised. The line carries the ids bound by the
    caller (the job's payment_id, request_id: infrastructure/logs.py); never the card, nor its token."""

    def __init__(self, gateway: PaymentGateway):
        self.gateway = gateway

    def __getattr__(self, name):  # anything else a gateway offers, unlogged
        return getattr(self.gateway, name)

    def tokenize(self, card: CardDetails) -> CardToken:
        return self._call("tokenize", {}, lambda: self.gateway.tokenize(card))

    def charge(
        self, *, token: str, amount: int, currency: str, idempotency_key: str, return_url: str = ""
    ) -> ChargeResult:
        fields = {"amount": amount, "currency": currency, "idempotency_key": idempotency_key}
        return self._call(
            "charge",
            fields,
            lambda: self.gateway.charge(
                token=token, amount=amount, currency=currency, idempotency_key=idempotency_key, return_url=return_url
            ),
        )

    def charge_abandon(self, *, idempotency_key: str, decline_code: str) -> ChargeResult | None:
        fields = {"idempotency_key": idempotency_key, "decline_code": decline_code}
        return self._call(
            "charge_abandon",
            fields,
            lambda: self.gateway.charge_abandon(idempotency_key=idempotency_key, decline_code=decline_code),
        )

    def charge_outcome(self, *, idempotency_key: str) -> ChargeResult | None:
        key = {"idempotency_key": idempotency_key}
        return self._call("charge_outcome", key, lambda: self.gateway.charge_outcome(idempotency_key=idempotency_key))

    def refund(self, *, charge_reference: str, amount: int, idempotency_key: str) -> RefundResult:
        fields = {"amount": amount, "charge_reference": charge_reference, "idempotency_key": idempotency_key}
        return self._call(
            "refund",
            fields,
            lambda: self.gateway.refund(
                charge_reference=charge_reference, amount=amount, idempotency_key=idempotency_key
            ),
        )

    def refund_outcome(self, *, idempotency_key: str) -> RefundResult | None:
        key = {"idempotency_key": idempotency_key}
        return self._call("refund_outcome", key, lambda: self.gateway.refund_outcome(idempotency_key=idempotency_key))

    @staticmethod
    def _call(operation: str, fields: dict, call):
        started = time.monotonic()
        try:
            result = call()
        except Exception as error:
            logger.warning(
                "gateway call failed",
                operation=operation,
                error=f"{type(error).__name__}: {error}",
                duration_ms=round((time.monotonic() - started) * 1000, 1),
                **fields,
            )
            raise
        logger.info(
            "gateway call",
            operation=operation,
            duration_ms=round((time.monotonic() - started) * 1000, 1),
            **fields,
            **_outcome(result),
        )
        return result


def _outcome(result) -> dict:
    if result is None:
        return {"outcome": "no record"}
    if isinstance(result, CardToken):
        return {"outcome": "tokenized", "card_brand": result.brand}
    if getattr(result, "requires_action", False):
        # The challenge URL is a bearer credential for the shopper's authentication: never in a log line.
        return {"outcome": "requires_action", "reference": result.reference}
    outcome = {"outcome": "approved" if result.approved else "declined", "reference": result.reference}
    code = getattr(result, "decline_code", "") or getattr(result, "failure_code", "")
    if code:
        outcome["code"] = code
    return outcome


@cache
def get_gateway() -> PaymentGateway:
    return LoggedGateway(import_string(settings.PAYMENTS_GATEWAY)())


def release_database_connection() -> None:
    """Hand this thread's database connection back (to the pool, or closed) before a call to the bank.

    A bank call can take seconds, and a worker process keeps many of them in flight on threads: a connection
    held idle across each call would need as many database connections as calls in flight. Django borrows
    one again at the next query. Inside a transaction (a test's, say) the connection is kept.
    """
    if not connection.in_atomic_block:
        connection.close()
