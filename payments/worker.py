"""A worker process that keeps many payment jobs in flight: several RQ workers, one per thread.

Why: a payment job spends almost all of its time waiting for the bank (2 s in `make bench`'s scenario 7),
and an RQ worker runs one job at a time. By Little's law a process settles at most threads ÷ bank latency
payments per second, so one job per process would need a process (~60 MiB) per payment in flight; a thread
costs a small fraction of that (docs/benchmarks.md, "Choices"). The jobs are I/O-bound (the bank, the
database, Redis), so the GIL is released while they wait.

Each thread is a complete RQ `SimpleWorker` with its own name, heartbeat, started-job registry entry and
execution record, so RQ's bookkeeping and our recovery are the same as with one worker per process: a
process that is killed loses its threads' jobs the way a killed worker loses its job, and the reconciler
re-drives those payments (payments/services/reconcile.py). rq 2 has no thread-pool worker of its own.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading

import redis
from rq.queue import Queue
from rq.timeouts import TimerDeathPenalty
from rq.worker import SimpleWorker

logger = logging.getLogger(__name__)

# How often an idle thread looks up from its blocking dequeue to see whether the process is stopping.
STOP_POLL_SECONDS = 2


class ThreadWorker(SimpleWorker):
    """An RQ SimpleWorker that can run on a thread other than the main one."""

    # RQ's default job timeout uses SIGALRM, which only the main thread can set; a timer thread raises the
    # timeout in the job's own thread instead. (It cannot interrupt a blocking socket read; the gateway's
    # own timeouts bound those.)
    death_penalty_class = TimerDeathPenalty

    def _install_signal_handlers(self) -> None:
        """Signals belong to the process's main thread (`run_thread_workers`), which stops every thread."""

    def subscribe(self) -> None:
        """No per-worker command channel: it would cost a thread and a Redis connection per job slot. Stop
        the process with SIGTERM instead (every thread finishes its job first)."""

    def unsubscribe(self) -> None:
        pass

    def dequeue_job_and_maintain_ttl(self, timeout, max_idle_time=None):
        if timeout is None:  # burst: never blocks
            return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
        # RQ's own loop blocks until a job comes; wake every few seconds to notice a stop request.
        while not self._stop_requested:
            result = super().dequeue_job_and_maintain_ttl(STOP_POLL_SECONDS, max_idle_time=STOP_POLL_SECONDS)
            if result is not None:
                return result
        return None

    def request_warm_stop(self) -> None:
        """Finish the job in hand (if any), then leave the loop."""
        self._stop_requested = True


def default_name_prefix() -> str:
    return f"{socket.gethostname()}.{os.getpid()}"


def run_thread_workers(
    *,
    queue_names: list[str],
    redis_url: str,
    threads: int,
    burst: bool = False,
    name_prefix: str | None = None,
    logging_level: str = "INFO",
) -> int:
    """Run `threads` workers on `queue_names` until SIGTERM/SIGINT (or, in burst mode, until the queues are
    empty). The first signal is a warm stop: every thread finishes the job it holds. A second one is a cold
    stop: the process exits at once and the reconciler re-drives what its threads held.

    Returns the number of threads that ended with an error (0 when all went well).
    """
    connection = redis.Redis.from_url(redis_url)  # thread-safe; each blocked dequeue holds one of its sockets
    queues = [Queue(name, connection=connection) for name in queue_names]
    prefix = name_prefix or default_name_prefix()
    workers = [
        ThreadWorker(queues, connection=connection, name=f"{prefix}.{number:02d}") for number in range(1, threads + 1)
    ]
    failures: list[str] = []
    stopping = threading.Event()

    def work(worker: ThreadWorker) -> None:
        try:
            worker.work(burst=burst, logging_level=logging_level)
        except BaseException:
            logger.exception("worker thread %s died", worker.name)
            failures.append(worker.name)

    def request_stop(signum, frame) -> None:
        if stopping.is_set():
            logger.warning("second stop signal: leaving now; the reconciler re-drives what was in flight")
            os._exit(1)
        stopping.set()
        logger.info("stopping: %d thread(s) finish the job they hold", threads)
        for worker in workers:
            worker.request_warm_stop()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    running = [threading.Thread(target=work, args=(worker,), name=worker.name) for worker in workers]
    for thread in running:
        thread.start()
    for thread in running:
        # join() with a timeout, in a loop: the main thread must stay free to run the signal handler.
        while thread.is_alive():
            thread.join(timeout=0.5)
    connection.close()
    return len(failures)
