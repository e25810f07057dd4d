"""The problem types the payments API answers besides HTTP's own (infrastructure/problem_types.py): each has a
page at /problems/<code with dashes>, which a problem document's `type` names. Registered in PaymentsConfig.ready()."""

from infrastructure.problem_types import RETRY_WITH_THE_KEY, ProblemType

PAYMENT_PROBLEM_TYPES = (
    ProblemType(
        "idempotency_key_missing",
        "Idempotency-Key missing or unusable",
        (400,),
        "Creating a payment or a refund needs an `Idempotency-Key` header: 1 to 255 printable ASCII characters, "
        "as a bare token or a quoted string. The request had none, or one that is too long or not printable.",
        "Send a key that names this one operation (a new UUID per payment is a good choice), and send the same "
        "key again when you retry it. Nothing was created.",
    ),
    ProblemType(
        "idempotency_key_reused",
        "Idempotency-Key already used",
        (422,),
        "This key was already used by this client for a different request (another body or another endpoint), "
        "or so long ago that its first answer is no longer kept. A key can only ever make one thing.",
        "Use a new key for a new operation. To retry the first one, send exactly its request again.",
    ),
    ProblemType(
        "invalid_wait",
        "Invalid wait",
        (400,),
        "The status URL's `wait` query parameter must be a whole number of seconds from 0 to 30.",
        "Send `?wait=25` (or less), or no `wait` for an answer at once.",
    ),
    ProblemType(
        "payment_processing",
        "Payment being processed",
        (409,),
        "A worker has taken the payment (or is settling an unknown outcome with the bank): it can no longer be "
        "canceled. Only a payment still waiting in the queue (`pending`), or for the cardholder's authentication "
        "(`requires_action`, unless they have answered already), can.",
        "Wait for its outcome on the status URL; refund it once it has succeeded if it should not stand.",
    ),
    ProblemType(
        "payment_final",
        "Payment already final",
        (410,),
        "The payment already has an outcome (succeeded, failed, canceled or refunded); there is nothing left to "
        "cancel.",
        "Read the payment for its outcome. A succeeded payment is undone with a refund.",
    ),
    ProblemType(
        "payment_not_refundable",
        "Payment not refundable",
        (409,),
        "Only a `succeeded` or `partially_refunded` payment can be refunded; this one is in another state.",
        "Wait until it has succeeded (follow its status URL); a failed or canceled payment charged nothing.",
    ),
    ProblemType(
        "refund_exceeds_capture",
        "Refund larger than what is left",
        (422,),
        "The amount is more than what is still refundable: what was captured, less what was refunded and what "
        "refunds under way will refund. `detail` says how much is left.",
        f"Refund at most what is left, or send no amount to refund all of it. {RETRY_WITH_THE_KEY}",
    ),
    ProblemType(
        "nothing_to_refund",
        "Nothing left to refund",
        (422,),
        "Everything captured has been refunded already, or is being refunded.",
        "Nothing to do: follow the payment's refunds for their outcome.",
    ),
    ProblemType(
        "callback_signature_invalid",
        "Gateway callback not verified",
        (400,),
        "A callback to /gateway/callbacks must carry a `Gateway-Signature` header that signs its exact body, made "
        "within the last few minutes with the secret we share with the gateway. This one did not: nothing it said "
        "was acted on.",
        "Only the payment gateway calls this endpoint. Check the shared secret (PAYMENTS_GATEWAY_CALLBACK_SECRET) "
        "and the clocks.",
    ),
)
