"""Run the whole app in the foreground: Redis (embedded when none answers), daphne, RQ workers and the
reconciler.

Ctrl-C, SIGTERM or SIGHUP stops everything in order, within STOP_WITHIN_SECONDS: daphne first (no new work),
then the workers (each thread finishes the payment it holds, and pushes its outcome), then the reconciler,
and the embedded Redis last, which every step before it still needs. A worker or reconciler that dies is
started again. Every child dies with this process, even when it is killed with SIGKILL (infrastructure/processes.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import structlog
from django.conf import settings
from django.core.management.base import BaseCommand
from prometheus_client.multiprocess import mark_process_dead

from infrastructure.embedded_redis import redis_answers, start_embedded_redis
from infrastructure.processes import spawn_child, stop_in_order
from infrastructure.redaction import url_without_password

# What the supervisor does is logged like the rest (JSON or text, LOG_FORMAT), not printed: its lines sit among
# its children's in the same stream.
logger = structlog.get_logger(__name__)

# The whole stop, from the signal to the embedded Redis gone. Each stage may use what the later ones do not
# need: the web server at most WEB_STOP_SECONDS, the workers until STOP_WITHIN_SECONDS minus the reserve of
# the reconciler and Redis, which stop in well under a second each.
STOP_WITHIN_SECONDS = 9.0
WEB_STOP_SECONDS = 3.0
RECONCILER_STOP_SECONDS = 1.0
REDIS_STOP_SECONDS = 0.5
# A child that keeps dying is started again after a delay that doubles up to the maximum; one that ran for
# a while before it died starts again after the first delay.
RESTART_DELAY_SECONDS = 1.0
RESTART_DELAY_MAX_SECONDS = 30.0
RAN_LONG_ENOUGH_SECONDS = 60.0


@dataclass
class Child:
    name: str
    argv: list[str]
    restart: bool
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    restart_delay: float = RESTART_DELAY_SECONDS
    restart_at: float | None = None

    def start(self, env: dict[str, str]) -> None:
        self.process = spawn_child(self.argv, env=env)
        self.started_at = time.monotonic()
        self.restart_at = None


class Command(BaseCommand):
    help = "Run daphne (HTTP + WebSocket), RQ workers and the reconciler in the foreground; Ctrl-C stops them all."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--workers", type=int, default=int(os.environ.get("RQ_WORKERS", "2")))

    def handle(self, *args, port, host, workers, **options):
        self._stop_signal: int | None = None
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self._request_stop)

        embedded = None
        redis_url = settings.REDIS_URL
        shown = url_without_password(redis_url)
        if redis_answers(redis_url):
            logger.info(f"Redis: using the server at {shown}")
        else:
            logger.info(f"Redis: nothing answers at {shown}; starting the embedded Valkey server")
            embedded, redis_url = start_embedded_redis(redis_url)

        metrics_dir = self._fresh_metrics_dir()
        self.stdout.write(f"Metrics: every process writes to {metrics_dir}; /metrics adds them up")
        env = {
            **os.environ,
            "REDIS_URL": redis_url,
            "PYTHONUNBUFFERED": "1",
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        }
        python = sys.executable
        daphne = [python, "-m", "daphne", "-b", host, "-p", str(port), "config.asgi:application"]
        web = Child("web", daphne, restart=False)
        reconciler = Child("reconciler", [python, "manage.py", "payments_reconciler"], restart=True)
        worker_children = [
            Child(
                f"worker-{number}",
                # A readable prefix: the worker adds its pid and a random token, new at every (re)start.
                [python, "manage.py", "payments_worker", "--name", f"worker-{number}"],
                restart=True,
            )
            for number in range(1, workers + 1)
        ]
        children = [web, reconciler, *worker_children]

        try:
            for child in children:
                if self._stop_signal is not None:  # stopped while starting: start no more
                    break
                child.start(env)
            shown_host = "localhost" if host in ("127.0.0.1", "0.0.0.0") else host  # noqa: S104
            base = f"http://{shown_host}:{port}"
            if settings.LOG_FORMAT == "console":  # for the person at the terminal; JSON logs get it as an event
                self.stdout.write(
                    self.style.SUCCESS(
                        f"\n  Shop:   {base}/\n  Admin:  {base}/admin/   (queues: {base}/admin/rq/)\n"
                        f"  API:    {base}/api/v1/\n  Workers: {workers} process(es) × "
                        f"{settings.PAYMENTS_WORKER_THREADS} thread(s)    Ctrl-C stops everything.\n"
                    )
                )
            else:
                logger.info(
                    "stack started",
                    url=f"{base}/",
                    worker_processes=workers,
                    worker_threads=settings.PAYMENTS_WORKER_THREADS,
                )
            embedded = self._supervise(children, env, embedded)
        finally:
            self._stop_all(web, worker_children, reconciler, embedded)
        if self._stop_signal is None:
            logger.error("stopped because the web server exited (see above)")
        sys.stdout.flush()
        sys.stderr.flush()
        # Nothing of ours is left to clean up, and tearing down the interpreter (a thousand modules) took 1-2 s
        # on a busy machine: time the user waits for the prompt, outside the stop's budget.
        os._exit(0 if self._stop_signal is not None else 1)

    def _fresh_metrics_dir(self) -> Path:
        """prometheus-client's multiprocess directory (payments/metrics.py): PROMETHEUS_MULTIPROC_DIR, else
        var/metrics; emptied of the last run's files, whose counts would otherwise be added to this run's."""
        metrics_dir = Path(os.environ.get("PROMETHEUS_MULTIPROC_DIR") or Path(settings.VAR_DIR) / "metrics")
        metrics_dir.mkdir(parents=True, exist_ok=True)
        for stale in metrics_dir.glob("*.db"):  # its own files only, whatever else the directory holds
            stale.unlink()
        return metrics_dir

    def _request_stop(self, signum, frame):
        if self._stop_signal is None:
            self._stop_signal = signum
        else:
            # The stop under way is bounded (STOP_WITHIN_SECONDS); a second signal must not cut it short, or a
            # worker would abandon the payment it is finishing. os.write: the handler may interrupt a print.
            os.write(2, f"already stopping (at most {STOP_WITHIN_SECONDS:g} s)\n".encode())

    def _supervise(self, children: list[Child], env: dict[str, str], embedded):
        """Restart what dies until a stop is requested or daphne exits; returns the embedded Redis in use."""
        while self._stop_signal is None:
            now = time.monotonic()
            if embedded is not None and not embedded.is_running():
                # Started again at once on the same port, empty: the workers reconnect and register again, and
                # the reconciler re-drives from the database whatever was queued.
                logger.warning("embedded Redis exited; starting it again (empty)")
                embedded.stop(timeout=0)
                embedded, _ = start_embedded_redis(env["REDIS_URL"])
            for child in children:
                if child.restart_at is not None:
                    if now >= child.restart_at:
                        child.start(env)
                    continue
                code = child.process.poll()
                if code is None:
                    continue
                # Its live gauges (open sockets) stop counting; its counters stay in the sums.
                mark_process_dead(child.process.pid, env["PROMETHEUS_MULTIPROC_DIR"])
                if not child.restart:
                    logger.error(f"{child.name} exited with {code}; stopping everything", child=child.name, code=code)
                    return embedded
                if now - child.started_at >= RAN_LONG_ENOUGH_SECONDS:
                    child.restart_delay = RESTART_DELAY_SECONDS
                logger.warning(
                    f"{child.name} exited with {code}; starting it again in {child.restart_delay:g} s",
                    child=child.name,
                    code=code,
                )
                child.restart_at = now + child.restart_delay
                child.restart_delay = min(child.restart_delay * 2, RESTART_DELAY_MAX_SECONDS)
            time.sleep(0.2)
        return embedded

    def _stop_all(self, web: Child, workers: list[Child], reconciler: Child, embedded) -> None:
        reason = signal.Signals(self._stop_signal).name if self._stop_signal else "a child exited"
        logger.info(f"Stopping ({reason}): web, then workers, then reconciler, then Redis")
        stages = [
            ("web", [web.process], STOP_WITHIN_SECONDS - WEB_STOP_SECONDS),
            ("workers", [child.process for child in workers], RECONCILER_STOP_SECONDS + REDIS_STOP_SECONDS),
            ("reconciler", [reconciler.process], REDIS_STOP_SECONDS),
        ]
        if embedded is not None:
            stages.append(("embedded Redis", [embedded.process], 0.0))
        stopped = stop_in_order(stages, within=STOP_WITHIN_SECONDS, report=logger.info)
        if embedded is not None:
            embedded.stop(timeout=0)  # already stopped above: this only removes its data directory
        logger.info(f"Stopped {stopped} process(es).")
