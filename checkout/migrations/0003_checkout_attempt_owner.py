import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def own_earlier_attempts(apps, schema_editor):
    """Attempts made before this migration were made by a submit, and belong to whoever that submit's payment
    belongs to. One whose order (or payment) is gone protects nothing and shows nothing: it is dropped."""
    CheckoutAttempt = apps.get_model("checkout", "CheckoutAttempt")
    Payment = apps.get_model("payments", "Payment")
    for attempt in CheckoutAttempt.objects.filter(owner_guest_id__isnull=True, owner_user__isnull=True).iterator():
        payment = (
            Payment.objects.filter(order_id=attempt.order_id).order_by("-created_at").first()
            if attempt.order_id is not None
            else None
        )
        if payment is None:
            attempt.delete()
            continue
        attempt.owner_guest_id = payment.owner_guest_id
        attempt.owner_user_id = payment.owner_user_id
        attempt.save(update_fields=["owner_guest_id", "owner_user"])


class Migration(migrations.Migration):
    dependencies = [
        ("checkout", "0002_shipping_and_checkout_attempts"),
        # Payment's owner fields, read by the backfill.
        ("payments", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="checkoutattempt",
            name="owner_guest_id",
            field=models.UUIDField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="checkoutattempt",
            name="owner_user",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.RunPython(own_earlier_attempts, migrations.RunPython.noop),
    ]
