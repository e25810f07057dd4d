from django.db import migrations, models

import payments.text


class Migration(migrations.Migration):
    # Apart from 0003: on PostgreSQL its backfill leaves deferred foreign-key checks pending, and a table with
    # pending trigger events cannot be altered in the same transaction.
    dependencies = [
        ("checkout", "0003_checkout_attempt_owner"),
    ]

    operations = [
        migrations.AddConstraint(
            model_name="checkoutattempt",
            constraint=models.CheckConstraint(
                condition=models.Q(("owner_guest_id__isnull", False), ("owner_user__isnull", False), _connector="OR"),
                name="checkout_attempt_has_owner",
            ),
        ),
        migrations.AlterField(
            model_name="order",
            name="shipping_address",
            field=models.CharField(blank=True, max_length=200, validators=[payments.text.free_text_validate]),
        ),
        migrations.AlterField(
            model_name="order",
            name="shipping_city",
            field=models.CharField(blank=True, max_length=100, validators=[payments.text.free_text_validate]),
        ),
        migrations.AlterField(
            model_name="order",
            name="shipping_name",
            field=models.CharField(blank=True, max_length=120, validators=[payments.text.free_text_validate]),
        ),
        migrations.AlterField(
            model_name="order",
            name="shipping_postcode",
            field=models.CharField(blank=True, max_length=20, validators=[payments.text.free_text_validate]),
        ),
    ]
