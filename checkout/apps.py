from django.apps import AppConfig


class CheckoutConfig(AppConfig):
    name = "checkout"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from checkout.services import checkout_attempts_purge
        from payments.services.reconcile import reconcile_housekeeping_register

        # One attempt is made per rendered checkout form: the reconciler's passes forget the unused ones.
        reconcile_housekeeping_register(checkout_attempts_purge)
