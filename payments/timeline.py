"""A payment's flight recorder: its whole life as one time-ordered list, read from what is stored.

Merged here, each from where it is kept:
- the submission: derived from the payment itself (created_at, owner, Idempotency-Key) and its first event (the
  channel), so that accepting a payment writes nothing more for it;
- replays of its Idempotency-Key (IdempotentReplay);
- each transition (PaymentEvent, with its actor and the person behind it);
- each job attempt (JobAttempt: worker, start, end, duration, outcome, exception) and the pushes it made;
- each bank call (GatewayCall: latency, reference, answer);
- pushes made outside a job (StatusPush);
- each refund (Refund: asked for, by whom, and how it ended) with its jobs and bank calls;
- each staff action in the admin (LogEntry, with its user);
- whatever higher apps register (`timeline_source_register`): the merchant's webhook tries (webhooks/timeline.py).

A constant number of queries, whatever the payment's history.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from payments.currencies import format_money
from payments.models import Actor, Payment, PaymentStatus, RefundStatus
from payments.recording import GatewayCall, IdempotentReplay, JobAttempt, RecordedKind, StatusPush

# Within one instant, the order in which things happen: the request, then the job, its bank call, the change it
# records, the push that follows, and the job's end.
_RANK = {
    "submission": 0,
    "replay": 1,
    "staff": 2,
    "refund": 3,
    "attempt": 4,
    "gateway": 5,
    "transition": 6,
    "push": 7,
    "attempt-end": 8,
    "refund-end": 9,
    "webhook": 10,
}

# Entries of higher apps, which this app may not import: each registers, in its AppConfig.ready, a function of the
# payment and the ids of it and its refunds that returns its entries (in a constant number of queries).
_SOURCES: list = []


def timeline_source_register(source) -> None:
    if source not in _SOURCES:
        _SOURCES.append(source)


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    kind: str  # a key of _RANK
    title: str
    who: str = ""
    detail: str = ""
    duration_ms: float | None = None

    @property
    def sort_key(self):
        return (self.at, _RANK[self.kind])

    @property
    def at_display(self) -> str:
        """To the millisecond, in the site's time zone (Django's date filter stops at seconds)."""
        local = timezone.localtime(self.at)
        return f"{local:%Y-%m-%d %H:%M:%S}.{local.microsecond // 1000:03d}"


def _person(user) -> str:
    return user.get_username() if user is not None else ""


def _who(actor: str, user=None) -> str:
    label = Actor(actor).label if actor in Actor.values else actor
    name = _person(user)
    return f"{label} ({name})" if name else label


def _submission(payment: Payment, first_event) -> TimelineEntry:
    channel = first_event.actor if first_event is not None else ""
    channel_name = {Actor.API: "the API", Actor.WEB: "the web checkout"}.get(channel, channel or "an unknown channel")
    if payment.owner_user_id is not None:
        who = f"API client {_person(payment.owner_user)}" if channel == Actor.API else _person(payment.owner_user)
    else:
        who = "guest shopper"
    detail = [f"{format_money(payment.amount, payment.currency)}, {payment.card_brand} •••• {payment.card_last4}"]
    if payment.idempotency_key:
        detail.append(f"Idempotency-Key: {payment.idempotency_key}")
    return TimelineEntry(
        at=payment.created_at,
        kind="submission",
        title=f"Submitted through {channel_name}",
        who=who,
        detail="; ".join(detail),
    )


def _transition(event) -> TimelineEntry:
    detail = [event.reason] if event.reason else []
    data = event.data or {}
    if "gateway_tries" in data:
        detail.append(f"bank tries: {data['gateway_tries']}")
    if "risk_rule" in data:
        detail.append(f"risk rule: {data['risk_rule']}")
    if "refund_id" in data:
        detail.append(f"refund {data['refund_id']}")
    if event.to_status == PaymentStatus.REQUIRES_ACTION:
        detail.append("3-D Secure: the shopper was sent to their bank's page; no worker waits for them")
    return TimelineEntry(
        at=event.created_at,
        kind="transition",
        title=f"#{event.seq} {event.from_status or '∅'} → {event.to_status}",
        who=_who(event.actor, event.actor_user),
        detail="; ".join(detail),
    )


def _attempts(attempts: list[JobAttempt]) -> list[TimelineEntry]:
    entries, numbers = [], {}
    for attempt in attempts:
        numbers[attempt.object_id] = number = numbers.get(attempt.object_id, 0) + 1
        job = "Refund job" if attempt.kind == RecordedKind.REFUND else "Job"
        name = f"{job} attempt {number}"
        worker = attempt.worker or "not run by an RQ worker"
        if attempt.finished_at is None:
            entries.append(
                TimelineEntry(
                    at=attempt.started_at,
                    kind="attempt",
                    title=f"{name} started, never finished",
                    who=worker,
                    detail="the worker died or was stopped while running it (or it is still running)",
                )
            )
            continue
        entries.append(
            TimelineEntry(
                at=attempt.started_at, kind="attempt", title=f"{name} started", who=worker, detail=attempt.job_id
            )
        )
        entries.append(
            TimelineEntry(
                at=attempt.finished_at,
                kind="attempt-end",
                title=f"{name} ended: {attempt.outcome or '?'}",
                who=worker,
                detail=attempt.exception,
                duration_ms=attempt.duration_ms,
            )
        )
        entries += _pushes_of(attempt, worker)
    return entries


def _pushes_of(attempt: JobAttempt, worker: str) -> list[TimelineEntry]:
    entries = []
    for push in attempt.pushes or []:
        at = parse_datetime(push.get("at", ""))
        if at is not None:
            entries.append(_push(at, push.get("seq"), push.get("ok", False), push.get("ms"), who=worker))
    return entries


def _push(at, seq, ok: bool, duration_ms, *, who: str) -> TimelineEntry:
    title = f"Pushed #{seq} to waiting clients" if ok else f"Push of #{seq} failed (clients read the database)"
    return TimelineEntry(at=at, kind="push", title=title, who=who, duration_ms=duration_ms)


def _gateway_call(call: GatewayCall) -> TimelineEntry:
    detail = [part for part in (call.reference, call.code, call.error) if part]
    return TimelineEntry(
        at=call.started_at,
        kind="gateway",
        title=f"Bank: {call.get_operation_display()} (try {call.try_number}) → {call.get_outcome_display()}",
        who="bank",
        detail="; ".join(detail),
        duration_ms=call.duration_ms,
    )


def _refund_entries(refund, currency: str) -> list[TimelineEntry]:
    amount = format_money(refund.amount, currency)
    entries = [
        TimelineEntry(
            at=refund.created_at,
            kind="refund",
            title=f"Refund of {amount} asked for",
            who=_who(refund.actor, refund.requested_by),
            detail="; ".join(part for part in (refund.reason, f"refund {refund.pk}") if part),
        )
    ]
    if refund.status in (RefundStatus.SUCCEEDED, RefundStatus.FAILED):
        detail = [part for part in (refund.gateway_reference, refund.failure_code, refund.failure_message) if part]
        entries.append(
            TimelineEntry(
                at=refund.updated_at,
                kind="refund-end",
                title=f"Refund of {amount} {refund.status}",
                who=_who(refund.actor, refund.requested_by),
                detail="; ".join(detail),
            )
        )
    return entries


def _staff_action(entry: LogEntry) -> TimelineEntry:
    return TimelineEntry(
        at=entry.action_time,
        kind="staff",
        title=f"Staff: {entry.get_change_message() or entry.get_action_flag_display()}",
        who=f"Staff ({_person(entry.user)})",
    )


def payment_timeline(*, payment: Payment) -> list[TimelineEntry]:
    """Everything that happened to `payment`, oldest first, each with its time to the microsecond."""
    events = list(payment.events.select_related("actor_user").order_by("seq"))
    refunds = list(payment.refunds.select_related("requested_by").order_by("created_at"))
    refund_ids = {refund.pk for refund in refunds}
    object_ids = [payment.pk, *refund_ids]

    entries = [_submission(payment, events[0] if events else None)]
    entries += [_transition(event) for event in events]
    entries += _attempts(list(JobAttempt.objects.filter(object_id__in=object_ids).order_by("started_at", "pk")))
    entries += [_gateway_call(call) for call in GatewayCall.objects.filter(object_id__in=object_ids)]
    entries += [
        _push(push.at, push.seq, push.ok, push.duration_ms, who=_who(push.actor))
        for push in StatusPush.objects.filter(payment_id=payment.pk)
    ]
    client = _person(payment.owner_user) if payment.owner_user_id else ""
    entries += [
        TimelineEntry(
            at=replay.at,
            kind="replay",
            title=f"Idempotency-Key replayed: answered {replay.response_status} again",
            who=f"API client {client}" if client else "API client",
            detail=f"Idempotency-Key: {replay.key}",
        )
        for replay in IdempotentReplay.objects.filter(object_id__in=object_ids)
    ]
    for refund in refunds:
        entries += _refund_entries(refund, payment.currency)
    entries += [
        _staff_action(entry)
        for entry in LogEntry.objects.filter(
            content_type=ContentType.objects.get_for_model(Payment), object_id=str(payment.pk)
        ).select_related("user")
    ]
    for source in _SOURCES:
        entries += source(payment=payment, object_ids=object_ids)
    return sorted(entries, key=lambda entry: entry.sort_key)
