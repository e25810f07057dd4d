"""The payments queue's worker process: `--threads` RQ workers in one process
(infrastructure/overrides/rq_worker.py)."""

from __future__ import annotations

import os
import sys

import structlog
from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import connections

from infrastructure.overrides.rq_worker import default_name_prefix, run_thread_workers

logger = structlog.get_logger(__name__)


class Command(BaseCommand):
    help = "Work the payments queue with many jobs in flight per process; SIGTERM/Ctrl-C stops it warmly."

    def add_arguments(self, parser):
        parser.add_argument(
            "--threads",
            type=int,
            default=settings.PAYMENTS_WORKER_THREADS,
            help="jobs in flight in this process (default: PAYMENTS_WORKER_THREADS)",
        )
        parser.add_argument("--burst", action="store_true", help="drain the queue, then exit")
        parser.add_argument(
            "--name",
            default=None,
            help="a readable prefix for the RQ worker names (default: the hostname); every start adds its pid, a "
            "random token and the thread number, so a restarted process never collides with its dead self",
        )
        parser.add_argument(
            "--email-threads",
            type=int,
            default=settings.EMAIL_WORKER_THREADS,
            help="of those, how many also take jobs from the emails queue, after the payments queue's (default: "
            "EMAIL_WORKER_THREADS; with --burst, every thread does)",
        )
        parser.add_argument(
            "--webhook-threads",
            type=int,
            default=settings.WEBHOOK_WORKER_THREADS,
            help="of those, how many (others than the email threads, as far as there are enough) also take jobs from "
            "the webhooks queue, after the payments queue's (default: WEBHOOK_WORKER_THREADS; with --burst, every "
            "thread does)",
        )
        parser.add_argument("queues", nargs="*", default=["payments"])

    def handle(self, *args, threads, burst, name, email_threads, webhook_threads, queues, verbosity, **options):
        if threads < 1:
            self.stderr.write("--threads must be at least 1")
            sys.exit(2)
        # Threads open their own database connections; none is inherited from start-up.
        connections.close_all()
        level = {0: "WARNING", 1: "INFO"}.get(verbosity, "DEBUG")
        prefix = name or default_name_prefix()
        logger.info(f"payments worker {prefix} (pid {os.getpid()}): {threads} thread(s) on {', '.join(queues)}")
        failed = run_thread_workers(  # a thread that dies ends the process: its supervisor restarts it whole
            queue_names=queues,
            redis_url=settings.RQ_QUEUES["payments"]["URL"],
            threads=threads,
            burst=burst,
            name_prefix=prefix,
            logging_level=level,
            # Emails (checkout/outbox.py) on a few threads only: a stalled mail server must not hold the threads
            # payments need. In a burst every thread takes them: the thread that queued an email (its payment's
            # receipt) is then still there to send it when the others have left.
            # Webhooks (webhooks/delivery.py) likewise, on threads of their own: a merchant's slow server must not
            # hold the threads payments or emails need.
            side_queues=(
                ("emails", threads if burst else email_threads),
                ("webhooks", threads if burst else webhook_threads),
            ),
        )
        if failed:
            logger.error(f"payments worker {prefix} (pid {os.getpid()}): {failed} thread(s) died; exiting 1")
            sys.exit(1)
