from django.apps import AppConfig


class CheckoutConfig(AppConfig):
    name = "checkout"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from checkout.orders import order_follow_payment
        from checkout.problem_types import CHECKOUT_PROBLEM_TYPES
        from checkout.services import checkout_attempts_purge
        from infrastructure.problem_types import problem_types_register
        from payments.events import status_changing
        from payments.services.reconcile import reconcile_housekeeping_register

        # Inside the payment's transaction: the order must never disagree with its payment after a commit.
        status_changing.connect(order_follow_payment, dispatch_uid="checkout.order_follows_payment")
        # One attempt is made per rendered checkout form: the reconciler's passes forget the unused ones.
        reconcile_housekeeping_register(checkout_attempts_purge)
        problem_types_register(*CHECKOUT_PROBLEM_TYPES)
