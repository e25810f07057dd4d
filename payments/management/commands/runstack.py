"""Run the whole app in the foreground: Redis (embedded when none answers), daphne, RQ workers and the
reconciler.

Ctrl-C or SIGTERM stops every process this command started, the embedded Redis-compatible server
included, and a worker that dies is started again (a payment it held is re-driven, never lost).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.core.management.base import BaseCommand

from config.embedded_redis import redis_answers, start_embedded_redis
from config.processes import stop_processes

SHUTDOWN_GRACE_SECONDS = 10
WORKER_RESTART_DELAY_SECONDS = 1


@dataclass
class Child:
    name: str
    argv: list[str]
    restart: bool
    process: subprocess.Popen | None = None
    started_at: float = field(default=0.0)

    def start(self, env: dict[str, str]) -> None:
        # Its own process group: a terminal's Ctrl-C reaches only us, and we stop the children once and in
        # order (a second signal would make an RQ worker abandon the payment it is holding).
        self.process = subprocess.Popen(self.argv, env=env, process_group=0)  # noqa: S603 - our own argv
        self.started_at = time.monotonic()


class Command(BaseCommand):
    help = "Run daphne (HTTP + WebSocket) and RQ workers in the foreground; Ctrl-C stops them all."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--workers", type=int, default=int(os.environ.get("RQ_WORKERS", "2")))

    def handle(self, *args, port, host, workers, **options):
        self._stopping = False
        signal.signal(signal.SIGTERM, self._request_stop)
        signal.signal(signal.SIGINT, self._request_stop)

        embedded = None
        redis_url = settings.REDIS_URL
        if redis_answers(redis_url):
            self.stdout.write(f"Redis: using the server at {redis_url}")
        else:
            self.stdout.write(f"Redis: nothing answers at {redis_url}; starting the embedded Valkey server")
            embedded, redis_url = start_embedded_redis(redis_url)

        env = {**os.environ, "REDIS_URL": redis_url, "PYTHONUNBUFFERED": "1"}
        python = sys.executable
        children = [
            Child(
                "web",
                [python, "-m", "daphne", "-b", host, "-p", str(port), "config.asgi:application"],
                restart=False,
            ),
        ]
        children.append(Child("reconciler", [python, "manage.py", "payments_reconciler"], restart=True))
        for number in range(1, workers + 1):
            children.append(
                Child(
                    f"worker-{number}",
                    [python, "manage.py", "payments_worker", "--name", f"payments-{os.getpid()}-{number}"],
                    restart=True,
                )
            )

        try:
            for child in children:
                child.start(env)
            shown_host = "localhost" if host in ("127.0.0.1", "0.0.0.0") else host  # noqa: S104
            base = f"http://{shown_host}:{port}"
            self.stdout.write(
                self.style.SUCCESS(
                    f"\n  Shop:   {base}/\n  Admin:  {base}/admin/   (queues: {base}/admin/rq/)\n"
                    f"  API:    {base}/api/v1/\n  Workers: {workers} process(es) × {settings.PAYMENTS_WORKER_THREADS} "
                    "thread(s)    Ctrl-C stops everything.\n"
                )
            )
            self._supervise(children, env)
        finally:
            self._stop_all(children)
            if embedded is not None:
                embedded.stop()
                self.stdout.write("Redis: embedded server stopped")

    def _request_stop(self, signum, frame):
        self._stopping = True

    def _supervise(self, children: list[Child], env: dict[str, str]) -> None:
        while not self._stopping:
            for child in children:
                code = child.process.poll()
                if code is None:
                    continue
                if not child.restart:
                    self.stderr.write(f"{child.name} exited with {code}; stopping everything")
                    return
                self.stderr.write(f"{child.name} exited with {code}; starting it again")
                time.sleep(WORKER_RESTART_DELAY_SECONDS)
                child.start(env)
            time.sleep(0.5)

    def _stop_all(self, children: list[Child]) -> None:
        stopped = stop_processes([child.process for child in children], grace=SHUTDOWN_GRACE_SECONDS)
        self.stdout.write(f"Stopped {stopped} process(es).")
