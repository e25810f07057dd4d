"""What a chaos run counts once it is over, from the database, the sandbox bank's ledger and the client log.

Every counter must be zero. Each is a number plus a few samples (ids, not card data) to start from.
Needs Django set up on the run's database (run.py does it in-process).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from tests.chaos import plan
from tests.chaos.clients import ClientLog

PAID = ("succeeded", "partially_refunded", "refunded")
SAMPLES = 10


@dataclass
class Count:
    what: str
    value: int = 0
    parts: dict = field(default_factory=dict)  # the counter's parts, when it sums several views
    samples: list = field(default_factory=list)

    def add(self, part: str, found: list) -> None:
        self.parts[part] = len(found)
        self.value += len(found)
        self.samples += [f"{part}: {item}" for item in found[: SAMPLES - len(self.samples)]]


DESCRIPTIONS = {
    "lost": "payments (and refunds) a client was told about (202) that the database lacks",
    "charged_twice": "a payment with more than one bank debit, or two payments (refunds) for one client and key",
    "charged_not_paid": "money taken at the bank for a payment we do not show as paid",
    "refunds_over_capture": "refunds adding up to more than the payment's capture (database, bank, client)",
    "not_final": "payments and refunds not final after the settle window",
    "wrong_outcome": "a payment that ended other than its test card says (a faulty bank may only fail it)",
    "ws_never_learned": "WebSocket waiters that never learned the outcome by push or resume",
    "ws_disagrees": "a WebSocket outcome that contradicts the database (paid vs failed)",
    "server_errors": "5xx answers other than the documented 503 (problem service_unavailable + Retry-After)",
    "unexpected_answers": "answers a correct client should never get (a 4xx it did not cause, a refused form)",
    "gave_up": "requests a client retried until its deadline without an answer",
    "audit": "violations reported by manage.py payments_audit",
    "card_data": "card numbers or CVCs found in the pg_dump, Redis or a log line (search.py)",
}


def count_all(
    log: ClientLog, *, audit: dict, card_hits: int, card_hit_samples: list, unsettled_at_deadline: list[str]
) -> dict[str, Count]:
    """`unsettled_at_deadline`: what was not final when the settle window closed ("payment <id> <status>")."""
    from payments.models import Payment, Refund
    from payments.sandbox.models import Charge, LedgerEntry
    from payments.sandbox.models import Refund as BankRefund

    counts = {name: Count(what) for name, what in DESCRIPTIONS.items()}
    payments = {
        str(row["id"]): row
        for row in Payment.objects.values(
            "id",
            "status",
            "owner_user",
            "idempotency_key",
            "amount",
            "amount_captured",
            "amount_refunded",
            "failure_code",
            "decline_code",
            "order__email",
        )
    }
    refunds = {str(row["id"]): row for row in Refund.objects.values("id", "payment", "amount", "status")}

    # lost
    told = {pid for sub in log.submissions for pid in sub.payment_ids}
    counts["lost"].add("payments", sorted(told - set(payments)))
    told_refunds = {request.refund_id for request in log.refunds if request.refund_id}
    counts["lost"].add("refunds", sorted(told_refunds - set(refunds)))

    # charged twice
    debits = Counter(LedgerEntry.objects.filter(kind="debit").values_list("charge__idempotency_key", flat=True))
    counts["charged_twice"].add("bank keys debited more than once", [k for k, n in debits.items() if n > 1])
    per_key = Counter(
        (row["owner_user"], row["idempotency_key"]) for row in payments.values() if row["idempotency_key"]
    )
    counts["charged_twice"].add("payments for one (client, key)", [k for k, n in per_key.items() if n > 1])
    refund_keys = Counter(Refund.objects.exclude(idempotency_key="").values_list("requested_by", "idempotency_key"))
    counts["charged_twice"].add("refunds for one (client, key)", [k for k, n in refund_keys.items() if n > 1])
    paid_per_form = Counter(
        row["order__email"] for row in payments.values() if row["order__email"] and row["status"] in PAID
    )
    counts["charged_twice"].add("paid payments for one checkout form", [e for e, n in paid_per_form.items() if n > 1])
    counts["charged_twice"].add(
        "API keys answered with two payment ids",
        [f"{s.client} {s.key}" for s in log.submissions if s.flow == "api" and len(s.payment_ids) > 1],
    )

    # money at the bank for a payment not paid here
    approved = dict(Charge.objects.filter(approved=True).values_list("idempotency_key", "amount"))
    not_paid = []
    for key in approved:
        row = payments.get(key.removeprefix("payment-"))
        if row is None or row["status"] not in PAID:
            not_paid.append(f"{key} ({row['status'] if row else 'no such payment'})")
    counts["charged_not_paid"].add("approved charges", not_paid)

    # refunds over the capture
    counts["refunds_over_capture"].add(
        "database: refunded > captured",
        [pid for pid, row in payments.items() if row["amount_refunded"] > row["amount_captured"]],
    )
    refunded = defaultdict(int)
    for row in refunds.values():
        if row["status"] == "succeeded":
            refunded[str(row["payment"])] += row["amount"]
    counts["refunds_over_capture"].add(
        "database: succeeded refunds > captured",
        [pid for pid, total in refunded.items() if total > payments[pid]["amount_captured"]],
    )
    bank_refunded = defaultdict(int)
    for charge_key, amount in BankRefund.objects.filter(approved=True).values_list("charge__idempotency_key", "amount"):
        bank_refunded[charge_key] += amount
    counts["refunds_over_capture"].add(
        "bank: refunds > charge", [k for k, total in bank_refunded.items() if total > approved.get(k, 0)]
    )
    # What the merchant was told (202s), less the refunds the bank then refused (a failed refund frees its
    # amount again, so a later one may rightly be accepted): never more than the payment.
    accepted = defaultdict(int)
    for request in log.refunds:
        if refunds.get(request.refund_id, {}).get("status") != "failed":
            accepted[request.payment_id] += request.accepted_amount
    counts["refunds_over_capture"].add(
        "client: accepted refunds not failed > payment",
        [pid for pid, total in accepted.items() if pid in payments and total > payments[pid]["amount"]],
    )

    # not final when the settle window closed
    counts["not_final"].add("payments", [item for item in unsettled_at_deadline if item.startswith("payment ")])
    counts["not_final"].add("refunds", [item for item in unsettled_at_deadline if item.startswith("refund ")])

    # each card's outcome
    wrong = []
    for sub in log.submissions:
        for pid in sub.payment_ids:
            row = payments.get(pid)
            if row is not None and not outcome_fits(plan.CARD_EXPECTED[sub.card], row):
                wrong.append(f"{pid} {sub.card}: {row['status']} {row['failure_code']} {row['decline_code']}".strip())
    counts["wrong_outcome"].add("payments", wrong)

    # the sockets
    counts["ws_never_learned"].add(
        "waiters", [f"{w.payment_id} ({w.error or 'no outcome'})" for w in log.waiters if not w.learned]
    )
    disagree = []
    for waiter in log.waiters:
        row = payments.get(waiter.payment_id)
        if waiter.learned and row is not None and (waiter.learned in PAID) != (row["status"] in PAID):
            disagree.append(f"{waiter.payment_id}: socket {waiter.learned}, database {row['status']}")
    counts["ws_disagrees"].add("waiters", disagree)

    # the answers
    counts["server_errors"].add(
        "answers", [f"{e['surface']} {e['status']}: {' '.join(e['body'].split())[:120]}" for e in log.server_errors]
    )
    counts["unexpected_answers"].add(
        "answers", [f"{u['surface']}: {' '.join(u['what'].split())[:160]}" for u in log.unexpected]
    )
    counts["gave_up"].add(
        "payments", [f"{s.flow} {s.client} {s.key or s.n}" for s in log.submissions if "gave up" in s.answer]
    )
    counts["gave_up"].add("refunds", [f"{r.payment_id} {r.key}" for r in log.refunds if r.answer == "gave up"])

    violations = [
        f"{name}: {violation}"
        for name, check in audit.get("checks", {}).items()
        for violation in check.get("violations", [])
    ]
    if not audit.get("ok", False) and not violations:
        violations = [f"audit did not pass: {str(audit)[:200]}"]
    counts["audit"].add("payments_audit", violations)
    counts["card_data"].value = card_hits
    counts["card_data"].samples = card_hit_samples[:SAMPLES]
    return counts


def plan_unsettled() -> frozenset:
    from payments.models import UNSETTLED_STATUSES

    return frozenset(str(status) for status in UNSETTLED_STATUSES)


def outcome_fits(expected: str, row: dict) -> bool:
    """Whether a final payment ended as its card says. A bank that never answered may fail any payment
    (`processing_error`: nothing was charged); nothing else may differ, and a card that must be declined must
    never be paid."""
    status = row["status"]
    if status in plan_unsettled():
        return True  # counted by not_final
    if status == "failed" and row["failure_code"] == "processing_error":
        return True
    if expected == "succeed":
        return status in PAID
    return status == "failed" and row["decline_code"] == expected


def summary(counts: dict[str, Count]) -> dict:
    return {
        name: {"value": c.value, "what": c.what, "parts": c.parts, "samples": c.samples} for name, c in counts.items()
    }
