from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "payments"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from infrastructure.problem_types import problem_types_register
        from payments.dashboard_live import dashboard_on_status_changed
        from payments.events import status_changed
        from payments.metrics import metrics_on_status_changed
        from payments.problem_types import PAYMENT_PROBLEM_TYPES
        from payments.realtime import payment_push_on_status_changed

        # After commit: the push talks to Redis (docs/architecture.md, "One event per status change").
        status_changed.connect(payment_push_on_status_changed, dispatch_uid="payments.push")
        # After commit too: a change that rolls back is never counted (docs/operations.md, "Metrics").
        status_changed.connect(metrics_on_status_changed, dispatch_uid="payments.metrics")
        # After commit: tells open staff dashboards to read their figures again (throttled, payments/dashboard_live.py).
        status_changed.connect(dashboard_on_status_changed, dispatch_uid="payments.dashboard")
        # Each problem type the API answers has a page of its own, which a problem document's `type` names.
        problem_types_register(*PAYMENT_PROBLEM_TYPES)
