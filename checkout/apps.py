from django.apps import AppConfig


class CheckoutConfig(AppConfig):
    name = "checkout"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from checkout.orders import order_follow_payment
        from checkout.services import checkout_attempts_purge
        from payments.events import status_changing
        from payments.services.reconcile import reconcile_housekeeping_register

        # Inside the payment's transaction: the order must never disagree with its payment after a commit.
        status_changing.connect(order_follow_payment, dispatch_uid="checkout.order_follows_payment")
        # One attempt is made per rendered checkout form: the reconciler's passes forget the unused ones.
        reconcile_housekeeping_register(checkout_attempts_purge)
