import signal
import time

import structlog
from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections

from payments.services.reconcile import payments_reconcile

logger = structlog.get_logger(__name__)


class Command(BaseCommand):
    help = "Drive payments and refunds the happy path left behind to a final state; runs until stopped."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="one pass, then exit (for cron or a test)")
        parser.add_argument("--interval", type=float, default=settings.PAYMENTS_RECONCILE_INTERVAL)

    def handle(self, *args, once, interval, **options):
        stopping = False

        def stop(signum, frame):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        logger.info(f"reconciler: every {interval} s")
        while not stopping:
            close_old_connections()
            try:
                done = payments_reconcile()
                if once:
                    self.stdout.write(f"reconciled: {dict(done)}")
            except Exception:
                # The database or Redis may be away for a moment; the next pass tries again.
                logger.exception("reconciler pass failed; trying again next pass")
                if once:
                    raise
            if once:
                return
            deadline = time.monotonic() + interval
            while not stopping and time.monotonic() < deadline:
                time.sleep(0.2)
