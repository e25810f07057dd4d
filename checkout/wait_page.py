"""The wait page while the bank asks the shopper to confirm it's them (3-D Secure: requires_action).

The status document says requires_action from the bank's question until the job resumes the payment. Part of that
time the shopper has already answered: the bank's page sends them straight back to the wait page, and its callback
(payments.callbacks) only records the answer and queues the job. Asking them again then, for what they have just
done, would send them back to the bank; so the page tells the two apart by the recorded answer. The document
itself does not change (nothing a client acts on has), so this is the server-rendered page's alone: a page that
was showing the question when they left is a page they come back to afresh.
"""

from __future__ import annotations

from payments.models import Payment, PaymentStatus


def bank_step(payment: Payment) -> dict:
    """`bank_prompt`: the shopper must still go to their bank (the link is the way on; the page does not refresh
    itself under them). `bank_answered`: they have, and only the outcome is left to wait for."""
    at_bank = payment.status == PaymentStatus.REQUIRES_ACTION
    answered = at_bank and payment.action_reported_at is not None
    return {"bank_prompt": at_bank and not answered, "bank_answered": answered}
