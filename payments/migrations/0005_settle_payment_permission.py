from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("payments", "0004_flight_recorder"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="payment",
            options={
                "ordering": ["-created_at"],
                "permissions": [
                    ("refund_payment", "Can refund payments"),
                    ("cancel_payment", "Can cancel pending payments"),
                    ("settle_payment", "Can ask the bank now about unknown or stuck payments"),
                    ("manage_queues", "Can see and manage the job queues (/admin/rq/)"),
                ],
            },
        ),
    ]
