from django.apps import AppConfig


class CheckoutConfig(AppConfig):
    name = "checkout"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from checkout import checks  # noqa: F401 - registers the deploy checks
        from checkout.orders import order_follow_payment
        from checkout.outbox import shopper_emails_redrive
        from checkout.problem_types import CHECKOUT_PROBLEM_TYPES
        from checkout.receipts import shopper_email_enqueue_on_status_changed, shopper_email_record
        from checkout.services import checkout_attempts_purge
        from infrastructure.problem_types import problem_types_register
        from payments.events import status_changed, status_changing
        from payments.services.reconcile import reconcile_housekeeping_register

        # Inside the payment's transaction: the order must never disagree with its payment after a commit.
        status_changing.connect(order_follow_payment, dispatch_uid="checkout.order_follows_payment")
        # The receipt or refund notice a change owes is recorded with it, and its job queued once it committed.
        status_changing.connect(shopper_email_record, dispatch_uid="checkout.shopper_email_record")
        status_changed.connect(shopper_email_enqueue_on_status_changed, dispatch_uid="checkout.shopper_email_enqueue")
        # One attempt is made per rendered checkout form: the reconciler's passes forget the unused ones.
        reconcile_housekeeping_register(checkout_attempts_purge)
        # An email whose job was lost (Redis down at commit), or whose next try is due, is queued again.
        reconcile_housekeeping_register(shopper_emails_redrive)
        problem_types_register(*CHECKOUT_PROBLEM_TYPES)
