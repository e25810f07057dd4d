import json

from django.core.management.base import BaseCommand

from payments.services.audit import payments_audit


class Command(BaseCommand):
    help = "Check the payment invariants (settled in time, ledger matches, charged once); exit 1 on any violation."

    def handle(self, *args, **options):
        report = payments_audit()
        self.stdout.write(json.dumps(report, indent=2, sort_keys=True))
        if not report["ok"]:
            raise SystemExit(1)
