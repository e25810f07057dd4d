import uuid

from django.conf import settings
from django.db import models
from django.db.models import F, Q


class PaymentStatus(models.TextChoices):
    """Every state a payment can be in.

    pending             recorded and queued; no worker has taken it yet (the shopper can still cancel)
    processing          a worker holds it: risk checks and the gateway call are under way
    requires_action     the bank asked the cardholder to authenticate (3-D Secure): the shopper is sent to the
                        bank's challenge (`next_action_url`); no worker waits for it. The bank's report resumes it
                        (back to processing), or PAYMENTS_ACTION_TIMEOUT ends it (failed, authentication_expired)
    succeeded           the bank charged the card
    failed              declined by the bank or refused by our risk checks; nothing was charged
    unknown             the gateway call's answer never came: the bank may or may not have charged. Only
                        reconciliation (asking the gateway for the idempotency key's outcome) settles it
    canceled            canceled before any worker took it
    partially_refunded  succeeded, then part of the capture was given back
    refunded            succeeded, then all of it was given back
    """

    PENDING = "pending"
    PROCESSING = "processing"
    REQUIRES_ACTION = "requires_action"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    UNKNOWN = "unknown"
    CANCELED = "canceled"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"


S = PaymentStatus

# The status pipeline as data: {state: states it may move to}. `payment_transition` is the only writer
# of `Payment.status` and refuses anything not listed here.
ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    S.PENDING: frozenset({S.PROCESSING, S.CANCELED}),
    S.PROCESSING: frozenset({S.SUCCEEDED, S.FAILED, S.UNKNOWN, S.REQUIRES_ACTION}),
    # Back to processing once the bank has the cardholder's answer (the resume job charges with the same key);
    # failed when the cardholder never answers; canceled by the client while the bank still waits (the bank's
    # authentication is voided first, so it can never be charged afterwards).
    S.REQUIRES_ACTION: frozenset({S.PROCESSING, S.FAILED, S.CANCELED}),
    # Settling an unknown payment can find the bank waiting for the cardholder (the worker died after the bank
    # asked for authentication and before it recorded so).
    S.UNKNOWN: frozenset({S.SUCCEEDED, S.FAILED, S.REQUIRES_ACTION}),
    S.SUCCEEDED: frozenset({S.PARTIALLY_REFUNDED, S.REFUNDED}),
    S.PARTIALLY_REFUNDED: frozenset({S.PARTIALLY_REFUNDED, S.REFUNDED}),
    S.FAILED: frozenset(),
    S.CANCELED: frozenset(),
    S.REFUNDED: frozenset(),
}

# The shopper's question is "did I pay?": these states answer it, so the wait page stops waiting.
OUTCOME_STATUSES = frozenset({S.SUCCEEDED, S.FAILED, S.CANCELED, S.PARTIALLY_REFUNDED, S.REFUNDED})
# Not yet answered: the reconciler keeps looking at payments in these states until they leave them.
UNSETTLED_STATUSES = frozenset({S.PENDING, S.PROCESSING, S.REQUIRES_ACTION, S.UNKNOWN})
REFUNDABLE_STATUSES = frozenset({S.SUCCEEDED, S.PARTIALLY_REFUNDED})


class Actor(models.TextChoices):
    API = "api", "API"
    WEB = "web", "Web checkout"
    WORKER = "worker", "Worker"
    RECONCILER = "reconciler", "Reconciler"
    STAFF = "staff", "Staff"


class Payment(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    order = models.ForeignKey(
        "checkout.Order", null=True, blank=True, on_delete=models.PROTECT, related_name="payments"
    )
    # Who may see it: a signed-in user, or a guest identified by the random id kept in their session.
    owner_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="payments"
    )
    owner_guest_id = models.UUIDField(null=True, blank=True, db_index=True)

    amount = models.PositiveBigIntegerField(help_text="In the currency's minor units (cents for USD).")
    currency = models.CharField(max_length=3, help_text="ISO 4217 code, upper case.")
    description = models.CharField(max_length=255, blank=True)
    metadata = models.JSONField(default=dict, blank=True, help_text="The client's own keys (at most 20).")

    status = models.CharField(max_length=20, choices=PaymentStatus.choices, default=PaymentStatus.PENDING)
    # Bumped by every status change; the PaymentEvent with the same seq says what changed. Clients use it
    # to ignore stale pushes and to ask for what they missed.
    seq = models.PositiveIntegerField(default=0)

    # The card as the gateway's vault knows it. Never the number or the CVC.
    card_token = models.CharField(max_length=64)
    card_brand = models.CharField(max_length=20)
    card_last4 = models.CharField(max_length=4)
    card_exp_month = models.PositiveSmallIntegerField()
    card_exp_year = models.PositiveSmallIntegerField()
    # HMAC of the number under our own key: tells two payments with one card apart from others (velocity,
    # block list) without being reversible to the number.
    card_fingerprint = models.CharField(max_length=64, db_index=True)

    failure_code = models.CharField(max_length=40, blank=True)
    decline_code = models.CharField(max_length=40, blank=True)
    failure_message = models.CharField(max_length=255, blank=True)
    gateway_reference = models.CharField(max_length=64, blank=True)
    # 3-D Secure (requires_action): where the bank wants the shopper to go, until when we wait for them, and when
    # the bank reported their answer (its verified callback). The report is kept even if it comes before the
    # worker has recorded requires_action, so that the worker resumes the payment at once when it does.
    next_action_url = models.CharField(max_length=500, blank=True)
    next_action_expires_at = models.DateTimeField(null=True, blank=True)
    action_reported_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    amount_captured = models.PositiveBigIntegerField(default=0)
    amount_refunded = models.PositiveBigIntegerField(default=0)
    # When the reconciler should look at this payment again if it is still unsettled: the grace before a
    # pending payment's job is presumed lost, the lease of the worker holding it, or the next settle try.
    recheck_at = models.DateTimeField(null=True, blank=True)
    # The API client's Idempotency-Key ("" for checkout payments, whose form token plays that part). The
    # unique constraint below, not a timer, is what makes a second payment for one (client, key) impossible:
    # it refuses the second INSERT inside the transaction that would create it, for as long as the row lives.
    idempotency_key = models.CharField(max_length=255, blank=True, default="")

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        permissions = [
            ("refund_payment", "Can refund payments"),
            ("cancel_payment", "Can cancel pending payments"),
            ("settle_payment", "Can ask the bank now about unknown or stuck payments"),
            ("manage_queues", "Can see and manage the job queues (/admin/rq/)"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["owner_user", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="payment_idempotency_key_unique_per_client",
            ),
            models.CheckConstraint(condition=Q(status__in=PaymentStatus.values), name="payment_status_known"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_amount_positive"),
            models.CheckConstraint(
                condition=Q(owner_user__isnull=False) | Q(owner_guest_id__isnull=False),
                name="payment_has_owner",
            ),
            models.CheckConstraint(
                condition=Q(amount_captured__lte=F("amount")) & Q(amount_refunded__lte=F("amount_captured")),
                name="payment_refunds_within_capture",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "updated_at"], name="payment_status_updated"),
            models.Index(fields=["status", "recheck_at"], name="payment_status_recheck"),
        ]

    def __str__(self) -> str:
        return f"{self.id} {self.amount} {self.currency} {self.status}"

    @property
    def gateway_idempotency_key(self) -> str:
        # Derived from the payment alone, so every attempt, retry or re-drive asks the bank the same
        # question and the bank charges at most once.
        return f"payment-{self.id}"

    @property
    def has_outcome(self) -> bool:
        return self.status in OUTCOME_STATUSES


class PaymentEvent(models.Model):
    """Append-only history: one row per status change, numbered by the payment's seq."""

    payment = models.ForeignKey(Payment, on_delete=models.CASCADE, related_name="events")
    seq = models.PositiveIntegerField()
    from_status = models.CharField(max_length=20, blank=True)
    to_status = models.CharField(max_length=20, choices=PaymentStatus.choices)
    actor = models.CharField(max_length=20, choices=Actor.choices)
    # The person behind a staff or API action (None for the worker and the reconciler). Users are deactivated,
    # never deleted, while their actions are on record: PROTECT keeps the history whole.
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reason = models.CharField(max_length=255, blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["payment", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["payment", "seq"], name="payment_event_seq_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.payment_id}#{self.seq} {self.from_status or '∅'}→{self.to_status}"


class RefundStatus(models.TextChoices):
    """Every state a refund can be in.

    pending     recorded and queued for a worker
    processing  a worker is asking the bank to give the money back
    succeeded   the bank credited the card; the payment's refunded amount includes it
    failed      the bank refused; nothing was credited
    unknown     the bank's answer never came; reconciliation asks it again with the same key
    """

    PENDING = "pending"
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    UNKNOWN = "unknown"


R = RefundStatus

ALLOWED_REFUND_TRANSITIONS: dict[str, frozenset[str]] = {
    R.PENDING: frozenset({R.PROCESSING}),
    R.PROCESSING: frozenset({R.SUCCEEDED, R.FAILED, R.UNKNOWN}),
    R.UNKNOWN: frozenset({R.SUCCEEDED, R.FAILED}),
    R.SUCCEEDED: frozenset(),
    R.FAILED: frozenset(),
}
UNSETTLED_REFUND_STATUSES = frozenset({R.PENDING, R.PROCESSING, R.UNKNOWN})


class Refund(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    amount = models.PositiveBigIntegerField(help_text="In the payment currency's minor units.")
    status = models.CharField(max_length=20, choices=RefundStatus.choices, default=RefundStatus.PENDING)
    reason = models.CharField(max_length=255, blank=True)
    actor = models.CharField(max_length=20, choices=Actor.choices)
    # Who asked for it: the staff user or API client (merchant). Recorded on the refund and on the payment
    # event its success writes, so "who gave this money back" always has a name.
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # As on Payment: one refund per (client, Idempotency-Key), refused by the database itself.
    idempotency_key = models.CharField(max_length=255, blank=True, default="")
    failure_code = models.CharField(max_length=40, blank=True)
    failure_message = models.CharField(max_length=255, blank=True)
    gateway_reference = models.CharField(max_length=64, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    recheck_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=RefundStatus.values), name="refund_status_known"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="refund_amount_positive"),
            models.UniqueConstraint(
                fields=["requested_by", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="refund_idempotency_key_unique_per_client",
            ),
        ]
        indexes = [models.Index(fields=["status", "recheck_at"], name="refund_status_recheck")]

    def __str__(self) -> str:
        return f"refund {self.id} {self.amount} {self.status}"

    @property
    def gateway_idempotency_key(self) -> str:
        return f"refund-{self.id}"


class BlockedCard(models.Model):
    """The risk block list: a payment with a card whose fingerprint is here fails before the bank is asked."""

    card_fingerprint = models.CharField(max_length=64, unique=True)
    reason = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.card_fingerprint[:12]}… ({self.reason})"


class IdempotencyRecord(models.Model):
    """The first answer to one (client, Idempotency-Key), kept for IDEMPOTENCY_KEY_TTL so a retry gets it
    again (and a retry with another body gets 422).

    It is written in the same transaction as the payment or refund it answers for, and that object carries
    the key under its own unique constraint: there is no "claim" and no lock timer, so no request can ever
    take another's key over. The request fingerprint is an HMAC of the method, path and the request with the
    card reduced to its fingerprint: nothing derived from the CVC or the full number is in it.
    """

    owner_user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    request_fingerprint = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField()
    response_body = models.JSONField()
    response_headers = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["owner_user", "key"], name="idempotency_key_unique_per_client"),
        ]

    def __str__(self) -> str:
        return f"{self.owner_user_id}:{self.key}"


# The flight recorder's rows (job attempts, gateway calls, pushes, replays) live in their own module; imported
# here so that Django finds them with the app's models.
from payments.recording import GatewayCall, IdempotentReplay, JobAttempt, StatusPush  # noqa: E402, F401
