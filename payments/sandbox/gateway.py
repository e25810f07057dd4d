"""The sandbox bank: behaves like a card gateway, with test cards that produce each outcome.

Every money-moving call is recorded once per idempotency key, in the same transaction as the ledger entry
it makes, so a repeated or concurrent call with one key debits (or credits) at most once and gets the first
answer back.

Injected faults (`make chaos`, docs/test-cards.md): when SANDBOX_FAULTS_FILE names a file, every call reads
it (re-read only when the file changes) and, if it says `unavailable`, raises GatewayUnavailable before the
bank is touched; if it says `timeout`, the bank does its work and then GatewayTimeout hides the answer. Off
by default (no setting, no file, or anything else in it).
"""

from __future__ import annotations

import os
import random
import secrets
import time

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import Sum
from django.urls import reverse
from django.utils.crypto import salted_hmac
from django.utils.http import url_has_allowed_host_and_scheme

from payments.cards import CardDetails
from payments.gateway import CardToken, ChargeResult, GatewayTimeout, GatewayUnavailable, RefundResult
from payments.sandbox import behaviours
from payments.sandbox.models import Account, Authentication, Charge, FailedAttempt, LedgerEntry, Refund, VaultCard

AUTHENTICATION_FAILED = "authentication_failed"


def _charge_result(charge: Charge) -> ChargeResult:
    return ChargeResult(approved=charge.approved, reference=charge.reference, decline_code=charge.decline_code)


def _action_result(authentication: Authentication) -> ChargeResult:
    url = reverse("sandbox-bank:challenge", kwargs={"public_id": authentication.public_id})
    return ChargeResult(approved=False, reference=authentication.reference, next_action_url=url)


def same_origin_path(url: str) -> str:
    """`url` if it is a path of this site (no scheme, no host, not `//host`), else "": the bank sends the cardholder
    back only there, so a charge cannot turn the challenge page into an open redirect."""
    if url and url.startswith("/") and url_has_allowed_host_and_scheme(url, allowed_hosts=set()):
        return url
    return ""


def _refund_result(refund: Refund) -> RefundResult:
    return RefundResult(approved=refund.approved, reference=refund.reference, failure_code=refund.failure_code)


FAULT_UNAVAILABLE = "unavailable"
FAULT_TIMEOUT = "timeout"
_fault_cache: tuple[tuple, str] = ((), "")


def injected_fault() -> str:
    """What SANDBOX_FAULTS_FILE asks of the bank right now: "unavailable", "timeout" or "" (behave).

    Read on every call; the file is parsed again only when it changed (inode, mtime or size), so a harness
    switches a burst on and off by rewriting it, and the calls in between cost one stat()."""
    global _fault_cache
    path = settings.SANDBOX_FAULTS_FILE
    if not path:
        return ""
    try:
        stat = os.stat(path)
    except OSError:
        return ""
    signature = (path, stat.st_ino, stat.st_mtime_ns, stat.st_size)
    if _fault_cache[0] != signature:
        try:
            with open(path) as file:
                said = file.read().strip().lower()
        except OSError:
            said = ""
        _fault_cache = (signature, said if said in (FAULT_UNAVAILABLE, FAULT_TIMEOUT) else "")
    return _fault_cache[1]


def _fault_before(fault: str, call: str) -> None:
    if fault == FAULT_UNAVAILABLE:
        raise GatewayUnavailable(f"sandbox: injected fault, {call} never reached the bank")


def _fault_after(fault: str, call: str) -> None:
    if fault == FAULT_TIMEOUT:
        raise GatewayTimeout(f"sandbox: injected fault, the bank did {call} but its answer was lost")


class SandboxGateway:
    def tokenize(self, card: CardDetails) -> CardToken:
        fault = injected_fault()
        _fault_before(fault, "tokenize")
        try:
            token = self._tokenize(card)
        except DatabaseError as error:
            # The vault is a remote service in real life: a stall there (a lock wait past the lock timeout)
            # is the vault being unavailable, and nothing was stored for the caller.
            raise GatewayUnavailable(f"sandbox vault unavailable: {type(error).__name__}") from None
        _fault_after(fault, "tokenize")
        return token

    def _tokenize(self, card: CardDetails) -> CardToken:
        behaviour = behaviours.behaviour_for(card.number)
        vault_card = VaultCard.objects.create(
            token=f"tok_{secrets.token_hex(12)}",
            account_key=salted_hmac("payments.sandbox.account", card.number, algorithm="sha256").hexdigest(),
            behaviour=behaviour,
            brand=card.brand,
            last4=card.last4,
            exp_month=card.exp_month,
            exp_year=card.exp_year,
        )
        return CardToken(
            token=vault_card.token,
            brand=vault_card.brand,
            last4=vault_card.last4,
            exp_month=vault_card.exp_month,
            exp_year=vault_card.exp_year,
        )

    # --- charges ----------------------------------------------------------------------------------------
    def charge(
        self, *, token: str, amount: int, currency: str, idempotency_key: str, return_url: str = ""
    ) -> ChargeResult:
        fault = injected_fault()
        _fault_before(fault, "charge")
        result = self._charge(
            token=token, amount=amount, currency=currency, idempotency_key=idempotency_key, return_url=return_url
        )
        _fault_after(fault, "charge")
        return result

    def _charge(
        self, *, token: str, amount: int, currency: str, idempotency_key: str, return_url: str = ""
    ) -> ChargeResult:
        self._simulate_latency()
        existing = Charge.objects.filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            return _charge_result(existing)
        card = VaultCard.objects.get(token=token)
        if card.behaviour == behaviours.SLOW:
            time.sleep(settings.SANDBOX_SLOW_CARD_MS / 1000)
        if card.behaviour == behaviours.TRANSIENT_TWICE and self._fail_this_attempt(idempotency_key):
            raise GatewayUnavailable("sandbox: simulated connection failure (nothing was charged)")
        forced_decline = ""
        if card.behaviour == behaviours.REQUIRES_AUTHENTICATION:
            authentication = self._authentication_for(card, amount, currency, idempotency_key, return_url)
            if authentication.status == Authentication.Status.PENDING:
                return _action_result(authentication)
            if authentication.status == Authentication.Status.FAILED:
                forced_decline = AUTHENTICATION_FAILED
            # SUCCEEDED: charged as any card is, now. (VOIDED recorded its declined charge when it was voided.)
        charge = self._record_charge(card, amount, currency, idempotency_key, forced_decline=forced_decline)
        if card.behaviour == behaviours.ANSWER_LOST:
            raise GatewayTimeout("sandbox: the bank charged, but its answer was lost on the way back")
        return _charge_result(charge)

    def charge_outcome(self, *, idempotency_key: str) -> ChargeResult | None:
        fault = injected_fault()
        _fault_before(fault, "charge_outcome")
        self._simulate_latency()
        existing = Charge.objects.filter(idempotency_key=idempotency_key).first()
        waiting = None
        if existing is None:
            waiting = Authentication.objects.filter(
                idempotency_key=idempotency_key, status=Authentication.Status.PENDING
            ).first()
        _fault_after(fault, "charge_outcome")
        if existing is not None:
            return _charge_result(existing)
        return _action_result(waiting) if waiting is not None else None

    # --- 3-D Secure ---------------------------------------------------------------------------------------
    @staticmethod
    def _authentication_for(
        card: VaultCard, amount: int, currency: str, idempotency_key: str, return_url: str
    ) -> Authentication:
        """The key's challenge, opened by its first charge call (a repeated call gets the same one back)."""
        authentication, _ = Authentication.objects.get_or_create(
            idempotency_key=idempotency_key,
            defaults={
                "public_id": secrets.token_urlsafe(24),
                "reference": f"auth_{secrets.token_hex(10)}",
                "card": card,
                "amount": amount,
                "currency": currency,
                "return_url": same_origin_path(return_url),
            },
        )
        return authentication

    def charge_abandon(self, *, idempotency_key: str, decline_code: str) -> ChargeResult | None:
        fault = injected_fault()
        _fault_before(fault, "charge_abandon")
        self._simulate_latency()
        result = self._charge_abandon(idempotency_key=idempotency_key, decline_code=decline_code)
        _fault_after(fault, "charge_abandon")
        return result

    def _charge_abandon(self, *, idempotency_key: str, decline_code: str) -> ChargeResult | None:
        with transaction.atomic():
            # The same lock the cardholder's answer takes (payments.sandbox.challenge): one of the two comes first.
            authentication = Authentication.objects.select_for_update().filter(idempotency_key=idempotency_key).first()
            existing = Charge.objects.filter(idempotency_key=idempotency_key).first()
            if existing is not None:
                return _charge_result(existing)
            if authentication is None:
                return None
            if authentication.status == Authentication.Status.PENDING:
                authentication.status = Authentication.Status.VOIDED
                authentication.save(update_fields=["status"])
                charge = Charge.objects.create(
                    idempotency_key=idempotency_key,
                    card=authentication.card,
                    amount=authentication.amount,
                    currency=authentication.currency,
                    approved=False,
                    decline_code=decline_code,
                    reference=f"ch_{secrets.token_hex(10)}",
                )
                return _charge_result(charge)
        # The cardholder answered first: the charge completes as the next call with the key would complete it.
        return self._charge(
            token=authentication.card.token,
            amount=authentication.amount,
            currency=authentication.currency,
            idempotency_key=idempotency_key,
        )

    def _record_charge(
        self, card: VaultCard, amount: int, currency: str, idempotency_key: str, *, forced_decline: str = ""
    ) -> Charge:
        try:
            with transaction.atomic():
                account, _ = Account.objects.select_for_update().get_or_create(
                    account_key=card.account_key, defaults={"balance": behaviours.opening_balance(card.behaviour)}
                )
                if forced_decline:
                    approved, decline_code = False, forced_decline
                elif card.behaviour in behaviours.DECLINES:
                    approved, decline_code = False, card.behaviour
                elif amount > account.balance:
                    approved, decline_code = False, "insufficient_funds"
                else:
                    approved, decline_code = True, ""
                charge = Charge.objects.create(
                    idempotency_key=idempotency_key,
                    card=card,
                    amount=amount,
                    currency=currency,
                    approved=approved,
                    decline_code=decline_code,
                    reference=f"ch_{secrets.token_hex(10)}",
                )
                if approved:
                    account.balance -= amount
                    account.save(update_fields=["balance"])
                    LedgerEntry.objects.create(
                        account=account, kind=LedgerEntry.Kind.DEBIT, amount=amount, charge=charge
                    )
                return charge
        except IntegrityError:
            # Two calls with one key raced; the bank keeps the first answer (and its one debit) for both.
            return Charge.objects.get(idempotency_key=idempotency_key)

    # --- refunds ----------------------------------------------------------------------------------------
    def refund(self, *, charge_reference: str, amount: int, idempotency_key: str) -> RefundResult:
        fault = injected_fault()
        _fault_before(fault, "refund")
        result = self._refund(charge_reference=charge_reference, amount=amount, idempotency_key=idempotency_key)
        _fault_after(fault, "refund")
        return result

    def _refund(self, *, charge_reference: str, amount: int, idempotency_key: str) -> RefundResult:
        self._simulate_latency()
        existing = Refund.objects.filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            return _refund_result(existing)
        try:
            with transaction.atomic():
                charge = Charge.objects.select_for_update().get(reference=charge_reference)
                already = charge.refunds.filter(approved=True).aggregate(total=Sum("amount"))["total"] or 0
                approved = charge.approved and already + amount <= charge.amount
                refund = Refund.objects.create(
                    idempotency_key=idempotency_key,
                    charge=charge,
                    amount=amount,
                    approved=approved,
                    failure_code="" if approved else "refund_exceeds_charge",
                    reference=f"re_{secrets.token_hex(10)}",
                )
                if approved:
                    account = Account.objects.select_for_update().get(account_key=charge.card.account_key)
                    account.balance += amount
                    account.save(update_fields=["balance"])
                    LedgerEntry.objects.create(
                        account=account, kind=LedgerEntry.Kind.CREDIT, amount=amount, refund=refund
                    )
                return _refund_result(refund)
        except IntegrityError:
            return _refund_result(Refund.objects.get(idempotency_key=idempotency_key))

    def refund_outcome(self, *, idempotency_key: str) -> RefundResult | None:
        fault = injected_fault()
        _fault_before(fault, "refund_outcome")
        self._simulate_latency()
        existing = Refund.objects.filter(idempotency_key=idempotency_key).first()
        _fault_after(fault, "refund_outcome")
        return _refund_result(existing) if existing else None

    # --- simulation -------------------------------------------------------------------------------------
    @staticmethod
    def _fail_this_attempt(idempotency_key: str) -> bool:
        with transaction.atomic():
            attempt, _ = FailedAttempt.objects.select_for_update().get_or_create(idempotency_key=idempotency_key)
            if attempt.count >= behaviours.TRANSIENT_FAILURES:
                return False
            attempt.count += 1
            attempt.save(update_fields=["count"])
            return True

    @staticmethod
    def _simulate_latency() -> None:
        base, jitter = settings.SANDBOX_LATENCY_MS, settings.SANDBOX_LATENCY_JITTER_MS
        delay_ms = max(0, base + random.randint(-jitter, jitter)) if base else 0  # noqa: S311 - not crypto
        if delay_ms:
            time.sleep(delay_ms / 1000)
