"""A vaulted card names its account by key; the account is opened by the first charge (models.Account)."""

from django.db import migrations, models


def copy_account_keys(apps, schema_editor):
    VaultCard = apps.get_model("sandbox", "VaultCard")
    for card in VaultCard.objects.select_related("account").iterator():
        card.account_key = card.account.account_key
        card.save(update_fields=["account_key"])


class Migration(migrations.Migration):
    dependencies = [("sandbox", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="vaultcard", name="account_key", field=models.CharField(default="", max_length=64)
        ),
        migrations.RunPython(copy_account_keys, migrations.RunPython.noop),
        migrations.RemoveField(model_name="vaultcard", name="account"),
        migrations.AlterField(
            model_name="vaultcard", name="account_key", field=models.CharField(db_index=True, max_length=64)
        ),
    ]
