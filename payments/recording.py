"""What the flight recorder keeps besides the payment's own rows: job attempts, gateway calls, pushes made outside a
job, and replayed API answers. payments/timeline.py merges them with the events, refunds and staff actions.

Written by payments/services/recording.py in short writes of their own, never inside a payment's transaction and
never across a bank call. They name the payment or refund by id without a foreign key: a recorder row must never
wait on (or block) the row lock a transition holds, and a write for an id that is not (yet) there must not fail
the job it describes. Each is a few hundred bytes; docs/operations.md ("The flight recorder") says how they grow.
"""

from __future__ import annotations

from django.db import models


class RecordedKind(models.TextChoices):
    PAYMENT = "payment", "Payment"
    REFUND = "refund", "Refund"


class JobAttempt(models.Model):
    """One run of a payment's or a refund's job (payments/jobs.py): inserted when it starts, completed when it
    ends. One never completed is a worker that died (or was killed) while running it."""

    kind = models.CharField(max_length=10, choices=RecordedKind.choices)
    object_id = models.UUIDField(help_text="The payment's or the refund's id.")
    job_id = models.CharField(max_length=80, blank=True, help_text="The RQ job's id ('' when not run by RQ).")
    worker = models.CharField(max_length=200, blank=True, help_text="The RQ worker's name ('' when not run by RQ).")
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.FloatField(null=True, blank=True)
    # The status the job left its payment or refund in, or "error" when it raised (see `exception`).
    outcome = models.CharField(max_length=20, blank=True)
    exception = models.CharField(max_length=500, blank=True)
    # The pushes this attempt made (after its transitions committed): [{"seq", "at", "ms", "ok"}], at most
    # MAX_PUSHES_PER_ATTEMPT (services/recording.py); written with the attempt's end, so they cost no statement.
    pushes = models.JSONField(default=list, blank=True)

    class Meta:
        indexes = [models.Index(fields=["object_id", "started_at"], name="job_attempt_object")]

    def __str__(self) -> str:
        return f"{self.kind} {self.object_id} attempt at {self.started_at:%H:%M:%S.%f} {self.outcome or '…'}"


class GatewayCall(models.Model):
    """One call to the bank about a payment or a refund: what was asked, how long it took, what came back. No
    card data: the token is not kept, and an error's text has it blanked out."""

    class Operation(models.TextChoices):
        CHARGE = "charge", "charge"
        CHARGE_OUTCOME = "charge_outcome", "what became of the charge?"
        CHARGE_ABANDON = "charge_abandon", "give up waiting for the cardholder"
        REFUND = "refund", "refund"
        REFUND_OUTCOME = "refund_outcome", "what became of the refund?"

    class Outcome(models.TextChoices):
        APPROVED = "approved", "approved"
        DECLINED = "declined", "declined"
        REQUIRES_ACTION = "requires_action", "the cardholder must authenticate (3-D Secure)"
        NO_RECORD = "no_record", "no record (the bank never saw the key)"
        UNAVAILABLE = "unavailable", "unavailable (never reached the bank)"
        TIMEOUT = "timeout", "timeout (the answer was lost)"
        ERROR = "error", "error"

    kind = models.CharField(max_length=10, choices=RecordedKind.choices)
    object_id = models.UUIDField()
    # The job attempt that made the call, if a job made it (no foreign key: see the module's docstring).
    attempt_id = models.BigIntegerField(null=True, blank=True)
    operation = models.CharField(max_length=20, choices=Operation.choices)
    try_number = models.PositiveSmallIntegerField(default=1)
    started_at = models.DateTimeField()
    duration_ms = models.FloatField()
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    reference = models.CharField(max_length=64, blank=True)
    code = models.CharField(max_length=40, blank=True, help_text="The decline or failure code the bank gave.")
    error = models.CharField(max_length=300, blank=True)

    class Meta:
        indexes = [models.Index(fields=["object_id", "started_at"], name="gateway_call_object")]

    def __str__(self) -> str:
        return f"{self.operation} {self.object_id} {self.outcome} {self.duration_ms:.1f} ms"


class StatusPush(models.Model):
    """A push made outside a job (a cancel through the API or the admin, the reconciler marking a payment
    unknown). Pushes made by a job are kept on its JobAttempt instead. At most one per payment event."""

    payment_id = models.UUIDField()
    seq = models.PositiveIntegerField()
    actor = models.CharField(max_length=20, blank=True, help_text="Who made the change that was pushed.")
    at = models.DateTimeField()
    duration_ms = models.FloatField()
    ok = models.BooleanField()

    class Meta:
        indexes = [models.Index(fields=["payment_id", "seq"], name="status_push_payment")]

    def __str__(self) -> str:
        return f"push {self.payment_id}#{self.seq} {'sent' if self.ok else 'failed'}"


class IdempotentReplay(models.Model):
    """An API request answered with the stored answer of an earlier one with the same Idempotency-Key (the
    `Idempotent-Replayed: true` answers of payments/api/idempotent.py). The first request is the payment or
    refund itself; only its repeats are rows here."""

    object_id = models.UUIDField(help_text="The payment or refund the replayed answer is about.")
    client_id = models.BigIntegerField(help_text="The API client (user) that asked again.")
    key = models.CharField(max_length=255)
    at = models.DateTimeField()
    response_status = models.PositiveSmallIntegerField()

    class Meta:
        indexes = [models.Index(fields=["object_id", "at"], name="idempotent_replay_object")]

    def __str__(self) -> str:
        return f"replay of {self.key} for {self.object_id}"
