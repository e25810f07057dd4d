from django.apps import AppConfig


class SandboxConfig(AppConfig):
    """The sandbox bank: stands where a real provider's systems would be, with its own tables."""

    name = "payments.sandbox"
    label = "sandbox"
    verbose_name = "Sandbox bank"
    default_auto_field = "django.db.models.BigAutoField"
