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

Supervision (docs/operations.md, "Supervision and shutdown"): RQ refuses a name that is still registered, and
a killed process leaves its names registered for minutes, so every start takes fresh names (pid and a random
token) and first forgets the registrations of this host's dead processes. A thread that leaves its loop
unexpectedly takes the process down, warmly, so that its supervisor starts it again whole: a process never
runs on at part strength. And a worker whose registration Redis lost (FLUSHALL, a restart without
persistence) registers again on its next heartbeat.

Library: rq. Private names touched: `Worker._install_signal_handlers` (overridden: no handlers off the main
thread) and `_stop_requested` (set for a warm stop, read in the dequeue loop); undocumented parts overridden or
used: `subscribe`/`unsubscribe`, `dequeue_job_and_maintain_ttl`, `heartbeat`, `serialize`, `get_state` and
`rq.worker_registration`. Pinned to the minor version they were written against, `rq>=2.12,<2.13`
(pyproject.toml).

Upstream:
- a worker per thread: rq 2 has no thread-pool worker, rq/rq#1804 ("Create a new `ThreadPoolWorker`", open;
  rq/rq#1803 was a draft of one, closed unmerged). No issue found about `_install_signal_handlers` off the main
  thread: `Worker.work()` installs SIGINT/SIGTERM handlers, which Python allows only on the main thread.
- registration lost while the worker lives: rq/rq#469 ("heartbeat after key expires", open): RQ's heartbeat
  refreshes the worker's key and never adds the worker to the worker sets again.
- a name still registered after a kill: rq/rq#242 and rq/django-rq#296 ("There exists an active worker named
  ... already", both closed); in rq/rq#1938 the maintainer's answer is that a killed worker's keys expire
  after their TTL, which is minutes.
"""

from __future__ import annotations

import contextvars
import logging
import os
import secrets
import signal
import socket
import threading
import time

import redis
from rq import worker_registration
from rq.queue import Queue
from rq.timeouts import TimerDeathPenalty
from rq.worker import SimpleWorker, Worker
from structlog.contextvars import bind_contextvars

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

    def perform_job(self, job, queue) -> bool:
        """RQ's, with every line logged while the job runs (RQ's own, the job's) carrying its id, this worker's
        name and the id of the request that queued it (job.meta, payments/services/dispatch.py). Context
        variables are per thread: the jobs on the other threads keep theirs (infrastructure/logs.py)."""
        return contextvars.copy_context().run(self._perform_job_with_ids, job, queue)

    def _perform_job_with_ids(self, job, queue) -> bool:
        # In a copy of the thread's context: whatever the job binds is gone with it, and the next job on this
        # thread starts from nothing of it.
        ids = {"job_id": job.id, "worker": self.name}
        request_id = (job.meta or {}).get("request_id")
        if request_id:
            ids["request_id"] = request_id
        bind_contextvars(**ids)
        return super().perform_job(job, queue)

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

    def heartbeat(self, timeout: int | None = None, pipeline=None) -> None:
        """RQ's heartbeat, which also notices that Redis lost this worker's registration and registers again.

        RQ's own heartbeat only refreshes the worker's hash (recreating it with one field when it is gone) and
        never re-adds it to the worker sets, so after a FLUSHALL or a Redis restart a live worker vanished
        from `Worker.all()` and the dashboard for good. Calls inside a pipeline (job start) are left to RQ:
        an idle worker beats every STOP_POLL_SECONDS, which is soon enough.
        """
        if pipeline is not None:
            super().heartbeat(timeout, pipeline=pipeline)
            return
        with self.connection.pipeline() as beat:
            beat.exists(self.key)
            super().heartbeat(timeout, pipeline=beat)
            registered = beat.execute()[0]
        if not registered:
            self._register_again(timeout or self.worker_ttl + 60)

    def _register_again(self, ttl: int) -> None:
        logger.warning("worker %s: its registration was gone from Redis; registering again", self.name)
        with self.connection.pipeline() as pipeline:
            pipeline.hset(self.key, mapping={**self.serialize(), "state": self.get_state()})
            worker_registration.register(self, pipeline)
            pipeline.expire(self.key, ttl)
            pipeline.execute()


def side_queue_threads(
    threads: int, side_queues: tuple[tuple[str, int], ...], queue_names: list[str] | tuple[str, ...] = ()
) -> list[list[str]]:
    """Which side queues each thread takes: each queue's `count` threads follow the previous queue's, wrapping round
    to the first thread only when there are fewer threads than all of them want."""
    taken: list[list[str]] = [[] for _ in range(threads)]
    first = 0
    for name, count in side_queues:
        if name in queue_names:
            continue
        for offset in range(min(count, threads)):
            taken[(first + offset) % threads].append(name)
        first += count
    return taken


def default_name_prefix() -> str:
    return socket.gethostname()


def worker_names(prefix: str, threads: int) -> list[str]:
    """One RQ worker name per thread, new at every process start: `<prefix>.<pid>-<random>.<nn>`.

    RQ refuses to start a worker under a name that is still registered, and a process that was killed leaves
    its names registered until their TTL runs out (minutes); so a restart under the same names crash-looped.
    The pid says which process a name belongs to; the random part keeps names unique across pid reuse and
    across hosts (containers) whose pids coincide.
    """
    start = f"{prefix}.{os.getpid()}-{secrets.token_hex(3)}"
    return [f"{start}.{number:02d}" for number in range(1, threads + 1)]


def _process_is_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # someone else's process: alive
        return False
    return False


def forget_dead_workers(connection: redis.Redis) -> list[str]:
    """Unregister the RQ workers of this host whose process is gone (killed, so it never said goodbye).

    Without this a killed process's workers stay listed (and counted) for up to the worker TTL. Only this
    host's workers (by the hostname RQ records) with a pid that no longer exists here are touched; a wrongly
    forgotten live worker (another machine with this hostname) registers again at its next heartbeat.
    """
    hostname = socket.gethostname()
    forgotten = []
    for worker in Worker.all(connection=connection):
        if worker.hostname == hostname and worker.pid and _process_is_gone(worker.pid):
            with connection.pipeline() as pipeline:
                worker_registration.unregister(worker, pipeline)
                pipeline.delete(worker.key)
                pipeline.execute()
            forgotten.append(worker.name)
    if forgotten:
        logger.info("forgot %d RQ worker(s) of dead processes on %s", len(forgotten), hostname)
    return forgotten


def run_thread_workers(
    *,
    queue_names: list[str],
    redis_url: str,
    threads: int,
    burst: bool = False,
    name_prefix: str | None = None,
    logging_level: str = "INFO",
    side_queues: tuple[tuple[str, int], ...] = (),
) -> int:
    """Run `threads` workers on `queue_names` until SIGTERM/SIGINT (or, in burst mode, until the queues are
    empty). Each `(name, count)` of `side_queues` is also taken by `count` threads, after `queue_names`' (RQ dequeues
    from its queues in order): work that may be slow (email, webhooks) holds at most that many threads. Each side
    queue gets threads of its own, following the previous one's (wrapping round when there are not enough), so a
    stalled mail server and a slow webhook receiver do not wait on the same threads.

    The first signal is a warm stop: every thread finishes the job it holds. A second one is a cold stop: the
    process exits at once and the reconciler re-drives what its threads held.

    A thread that leaves its loop on its own (an error RQ gave up on) warm-stops the others: the process
    ends with an error and its supervisor starts it again with every thread.

    Returns the number of threads that ended with an error (0 when all went well).
    """
    connection = redis.Redis.from_url(redis_url)  # thread-safe; each blocked dequeue holds one of its sockets
    queues = [Queue(name, connection=connection) for name in queue_names]
    side = {name: Queue(name, connection=connection) for name, _ in side_queues if name not in queue_names}
    taken_by = [
        queues + [side[name] for name in names] for names in side_queue_threads(threads, side_queues, queue_names)
    ]
    forget_dead_workers(connection)
    names = worker_names(name_prefix or default_name_prefix(), threads)
    workers = [ThreadWorker(taken_by[number], connection=connection, name=name) for number, name in enumerate(names)]
    failures: list[str] = []
    stopping = threading.Event()
    thread_died = threading.Event()

    def work(worker: ThreadWorker) -> None:
        try:
            worker.work(burst=burst, logging_level=logging_level)
        except BaseException:
            logger.exception("worker thread %s died", worker.name)
            failures.append(worker.name)
            thread_died.set()
        else:
            if not burst and not stopping.is_set():
                logger.error("worker thread %s left its loop without a stop request", worker.name)
                failures.append(worker.name)
                thread_died.set()

    def stop_all(reason: str) -> None:
        stopping.set()
        logger.info("stopping (%s): %d thread(s) finish the job they hold", reason, threads)
        for worker in workers:
            worker.request_warm_stop()

    signals: list[int] = []

    def request_stop(signum, frame) -> None:
        signals.append(signum)
        if len(signals) > 1:
            logger.warning("second stop signal: leaving now; the reconciler re-drives what was in flight")
            os._exit(1)
        if not stopping.is_set():
            stop_all(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    running = [threading.Thread(target=work, args=(worker,), name=worker.name) for worker in workers]
    for thread in running:
        thread.start()
    while any(thread.is_alive() for thread in running):
        # A short sleep, in a loop: the main thread must stay free to run the signal handler.
        time.sleep(0.2)
        if thread_died.is_set() and not stopping.is_set() and not burst:
            # Not replaced in place: the process restarts whole under its supervisor, the one recovery path
            # that a SIGKILL or an OOM kill takes too, and it starts from fresh pools and a fresh push loop.
            stop_all("a worker thread died; the supervisor starts this process again")
    connection.close()
    return len(failures)
