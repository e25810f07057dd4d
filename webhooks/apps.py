from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from payments.events import status_changed, status_changing
        from payments.services.reconcile import reconcile_housekeeping_register
        from payments.timeline import timeline_source_register
        from webhooks import checks  # noqa: F401 - registers the deploy check
        from webhooks.delivery import webhook_deliveries_redrive
        from webhooks.events import webhook_deliveries_enqueue_on_status_changed, webhook_deliveries_record
        from webhooks.timeline import webhook_timeline_entries

        # What a change owes the merchant's endpoints is recorded with it, and queued once it committed.
        status_changing.connect(webhook_deliveries_record, dispatch_uid="webhooks.deliveries_record")
        status_changed.connect(webhook_deliveries_enqueue_on_status_changed, dispatch_uid="webhooks.deliveries_enqueue")
        # A delivery whose job was lost, or whose next try is due, is queued again.
        reconcile_housekeeping_register(webhook_deliveries_redrive)
        # The payment's flight recorder shows each try at telling its merchant.
        timeline_source_register(webhook_timeline_entries)
