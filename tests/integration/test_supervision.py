"""Supervision and shutdown (issue 10, items 4, 5 and 14), on real processes: `manage.py runstack` as `make run`
starts it (its own embedded Valkey, daphne, workers, the reconciler), signals and SIGKILLs from outside, and
RQ's own registry as the measure of worker capacity."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import redis
from channels_redis.core import RedisChannelLayer
from rq import Worker

from infrastructure.embedded_redis import start_embedded_redis
from tests.conftest import BASE_DIR, VISA_OK, _database_url_for_subprocesses, _free_port, wait_until
from tests.integration.shop import Shopper
from tests.integration.test_recovery import SLOW_CARD, debits_for, status_of

pytestmark = [pytest.mark.integration]

ROLES = {"valkey-server": "redis", "daphne": "web", "payments_worker": "worker", "payments_reconciler": "reconciler"}


def _alive(pid: int) -> bool:
    """Running, not a zombie waiting for its parent to reap it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _children_of(parent: int) -> dict[int, str]:
    """pid -> role (redis, web, worker, reconciler) of `parent`'s live children."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == parent and fields[0] != "Z":
            found[int(stat.parent.name)] = next((role for key, role in ROLES.items() if key in cmdline), cmdline)
    return found


def _live_workers(redis_url: str) -> list[Worker]:
    """The RQ workers the registry lists whose process is running (what the dashboard should show)."""
    connection = redis.Redis.from_url(redis_url)
    try:
        return [worker for worker in Worker.all(connection=connection) if worker.pid and _alive(worker.pid)]
    finally:
        connection.close()


def _registered_workers(redis_url: str) -> list[Worker]:
    connection = redis.Redis.from_url(redis_url)
    try:
        return Worker.all(connection=connection)
    finally:
        connection.close()


def _watch_until_gone(pids: dict[int, str], *, timeout: float) -> dict[int, float]:
    """Seconds from now until each pid was gone (polled every 20 ms); pids still running are left out."""
    start = time.monotonic()
    gone: dict[int, float] = {}
    while len(gone) < len(pids) and time.monotonic() - start < timeout:
        for pid in pids:
            if pid not in gone and not _alive(pid):
                gone[pid] = time.monotonic() - start
        time.sleep(0.02)
    return gone


@dataclass
class Supervisor:
    """`manage.py runstack` in a process group of its own, as `make run` execs it in a terminal."""

    process: subprocess.Popen
    http_url: str
    redis_url: str
    log_path: Path
    seen: set[int] = field(default_factory=set)

    def children(self) -> dict[int, str]:
        found = _children_of(self.process.pid)
        self.seen.update(found)
        return found

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def start_runstack(transactional_db, tmp_path):
    """Start runstack on the test database with REDIS_URL on a free port, where nothing answers: it starts
    its embedded Valkey there. Everything it started is gone at the end, whatever the test did."""
    started: list[Supervisor] = []

    def start(*, workers: int, threads: int, redis_password: str = "", **env: str) -> Supervisor:
        port, redis_port = _free_port(), _free_port()
        redis_url = f"redis://127.0.0.1:{redis_port}/0"
        # A password in the URL runstack is given: nothing answers there, so the embedded server (which has none)
        # starts on that port, and its children are handed its URL.
        given_url = f"redis://:{redis_password}@127.0.0.1:{redis_port}/0" if redis_password else redis_url
        log_path = tmp_path / f"runstack-{len(started)}.log"
        with open(log_path, "ab") as log:
            process = subprocess.Popen(  # noqa: S603
                [sys.executable, "manage.py", "runstack", "--port", str(port), "--workers", str(workers)],
                process_group=0,
                env={
                    **os.environ,
                    "DATABASE_URL": _database_url_for_subprocesses(),
                    "REDIS_URL": given_url,
                    "DJANGO_DEBUG": "true",
                    "PYTHONUNBUFFERED": "1",
                    "PAYMENTS_WORKER_THREADS": str(threads),
                    **env,
                },
                cwd=BASE_DIR,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        stack = Supervisor(process, f"http://127.0.0.1:{port}", redis_url, log_path)
        started.append(stack)

        def ready() -> bool:
            assert process.poll() is None, stack.log()
            try:
                httpx.get(stack.http_url + "/", timeout=1)
            except httpx.TransportError:
                return False
            return len(_live_workers(redis_url)) == workers * threads

        wait_until(ready, timeout=90, interval=0.5, message="runstack to serve and register its workers")
        assert sorted(stack.children().values()) == sorted(["redis", "web", "reconciler"] + ["worker"] * workers)
        return stack

    yield start
    for stack in started:
        if stack.process.poll() is None:
            stack.children()
            stack.process.send_signal(signal.SIGTERM)
            try:
                stack.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                stack.process.kill()
                stack.process.wait()
        for pid in stack.seen:  # what an old runstack left behind
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


class PushListener(threading.Thread):
    """A WebSocket consumer's view of a payment's pushes: a channel in the payment's group, on the stack's
    Redis, collecting every status document until one is final."""

    FINAL = {"succeeded", "failed", "canceled"}

    def __init__(self, redis_url: str, payment_id: str):
        super().__init__(daemon=True)
        self.redis_url, self.group = redis_url, f"payment.{payment_id}"
        self.statuses: list[str] = []
        self.subscribed = threading.Event()

    def run(self) -> None:
        asyncio.run(self._listen())

    async def _listen(self) -> None:
        layer = RedisChannelLayer(hosts=[{"address": self.redis_url}])
        channel = await layer.new_channel()
        await layer.group_add(self.group, channel)
        self.subscribed.set()
        deadline = time.monotonic() + 30
        while not self.FINAL.intersection(self.statuses) and time.monotonic() < deadline:
            try:
                message = await asyncio.wait_for(layer.receive(channel), timeout=1)
            except (TimeoutError, OSError, redis.RedisError):
                continue
            self.statuses.append(message["payment"]["status"])


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "sigint"])
def test_runstack_sigterm_stops_everything_in_order_within_10s_and_keeps_the_inflight_payment_push(
    start_runstack, product, stop_signal
):
    # given: the stack as `make run` starts it, with a payment whose bank call takes 4 s in a worker's hands
    stack = start_runstack(workers=2, threads=2, SANDBOX_SLOW_CARD_MS="4000")
    children = stack.children()
    payment_id = Shopper(stack.http_url, product.pk).pay(SLOW_CARD)["payment_id"]
    listener = PushListener(stack.redis_url, payment_id)
    listener.start()
    assert listener.subscribed.wait(timeout=10)
    wait_until(lambda: status_of(payment_id) == "processing", timeout=20, message="a worker to take the payment")

    # when: the terminal's Ctrl-C (SIGINT) or a SIGTERM reaches the supervisor's process group
    os.killpg(stack.process.pid, stop_signal)
    gone_after = _watch_until_gone({**children, stack.process.pid: "runstack"}, timeout=20)

    # then: every child is gone within 10 s, and the supervisor exits cleanly
    assert set(children) <= set(gone_after), f"still running: {set(children) - set(gone_after)}\n{stack.log()}"
    assert stack.process.pid in gone_after and max(gone_after.values()) < 10, f"{gone_after}\n{stack.log()}"
    print(
        f"stopped in {max(gone_after.values()):.1f} s: "
        + ", ".join(f"{children.get(p, 'runstack')} {t:.2f}" for p, t in gone_after.items())
    )
    assert stack.process.wait(timeout=5) == 0, stack.log()
    # in order: web (no new work), the workers (jobs in hand finished), the reconciler, the embedded Redis last
    by_role: dict[str, list[float]] = {}
    for pid, role in children.items():
        by_role.setdefault(role, []).append(gone_after[pid])
    assert by_role["web"][0] <= min(by_role["worker"]), by_role
    assert max(by_role["worker"]) <= by_role["reconciler"][0] <= by_role["redis"][0], by_role
    # the payment in flight finished, and its final push went out while Redis was still there
    listener.join(timeout=10)
    assert status_of(payment_id) == "succeeded"
    assert debits_for(payment_id) == 1
    assert listener.statuses[-1:] == ["succeeded"], (listener.statuses, stack.log())
    # and no flood of errors from workers that lost their Redis
    log = stack.log()
    assert "could not connect" not in log, log
    assert sum("error" in line.lower() for line in log.splitlines()) < 5, log


@pytest.mark.django_db(transaction=True)
def test_children_die_when_runstack_is_sigkilled(start_runstack):
    # given: the running stack and its children, the embedded Valkey among them
    stack = start_runstack(workers=2, threads=2)
    children = stack.children()

    # when: the supervisor is killed, with no chance to stop anything
    stack.process.send_signal(signal.SIGKILL)
    stack.process.wait(timeout=5)

    # then: every child dies with it within a few seconds, none left retrying a dead Redis
    gone_after = _watch_until_gone(children, timeout=5)
    orphans = {pid: role for pid, role in children.items() if pid not in gone_after}
    assert not orphans, orphans
    print(f"children gone {max(gone_after.values()):.2f} s after the supervisor's SIGKILL")


@pytest.mark.django_db(transaction=True)
def test_sigkilled_worker_process_is_back_at_full_thread_count_within_30s(start_runstack):
    # given: two worker processes of four threads each, all eight registered with RQ
    stack = start_runstack(workers=2, threads=4)
    victim = next(pid for pid, role in stack.children().items() if role == "worker")

    # when: one worker process is SIGKILLed (an OOM kill, a crash): its eight names stay registered in Redis
    os.kill(victim, signal.SIGKILL)
    killed_at = time.monotonic()

    # then: within 30 s RQ lists exactly eight workers again, every one of them in a running process
    def full_strength() -> bool:
        registered = _registered_workers(stack.redis_url)
        return len(registered) == 8 and all(worker.pid != victim and _alive(worker.pid) for worker in registered)

    wait_until(full_strength, timeout=30, interval=0.5, message="eight live RQ workers again:\n" + stack.log())
    print(f"full capacity back {time.monotonic() - killed_at:.1f} s after the SIGKILL")
    assert len({worker.name for worker in _live_workers(stack.redis_url)}) == 8
    assert stack.process.poll() is None


# --- One worker process on a Redis of its own -----------------------------------------------------------


@pytest.fixture
def private_redis():
    """An embedded Valkey for this test alone: free to be flushed without touching anyone else's keys."""
    server, url = start_embedded_redis(None)
    yield url
    server.stop()


@pytest.fixture
def start_worker(tmp_path):
    processes: list[subprocess.Popen] = []

    def start(redis_url: str, *, threads: int) -> tuple[subprocess.Popen, Path]:
        log_path = tmp_path / f"worker-{len(processes)}.log"
        with open(log_path, "ab") as log:
            process = subprocess.Popen(  # noqa: S603
                [sys.executable, "manage.py", "payments_worker", "--threads", str(threads), "--name", "test"],
                env={**os.environ, "REDIS_URL": redis_url, "PYTHONUNBUFFERED": "1"},
                cwd=BASE_DIR,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        processes.append(process)
        wait_until(
            lambda: len(_live_workers(redis_url)) == threads or process.poll() is not None,
            timeout=60,
            message="the worker's threads to register",
        )
        assert process.poll() is None, log_path.read_text()
        return process, log_path

    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_worker_reappears_in_rq_registry_after_redis_flushall(private_redis, start_worker):
    # given: a live worker process whose three threads are registered with RQ
    worker, log_path = start_worker(private_redis, threads=3)
    before = {w.name for w in _registered_workers(private_redis)}

    # when: Redis loses every key (FLUSHALL; a restart without persistence does the same)
    redis.Redis.from_url(private_redis).flushall()
    assert _registered_workers(private_redis) == []

    # then: within a few heartbeats the same workers are listed again, complete, while the process runs on
    wait_until(
        lambda: {w.name for w in _registered_workers(private_redis)} == before,
        timeout=10,
        message="the workers to register again:\n" + log_path.read_text(),
    )
    for registered in _registered_workers(private_redis):
        assert registered.pid == worker.pid
        # payments first; a few threads take emails after it (EMAIL_WORKER_THREADS), a few others webhooks (with
        # fewer threads than both want, some take both)
        assert [queue.name for queue in registered.queues] in (
            ["payments"],
            ["payments", "emails"],
            ["payments", "webhooks"],
            ["payments", "emails", "webhooks"],
        )
        assert registered.birth_date is not None
    assert worker.poll() is None


def test_a_worker_thread_that_dies_takes_its_process_down_for_its_supervisor_to_restart_whole(
    private_redis, start_worker
):
    # given: a worker process with four threads
    worker, log_path = start_worker(private_redis, threads=4)

    # when: one thread dies (a poison job that RQ cannot even load ends that thread's loop)
    connection = redis.Redis.from_url(private_redis)
    connection.hset("rq:job:poison", mapping={"created_at": "not a date", "data": b"garbage"})
    connection.rpush("rq:queue:payments", "poison")
    connection.close()

    # then: the process does not run on with three threads; it stops warmly and exits with an error, for its
    # supervisor to start it again with all four
    assert worker.wait(timeout=20) == 1, log_path.read_text()
    assert "left its loop" in log_path.read_text()
    assert _registered_workers(private_redis) == []


@pytest.mark.django_db(transaction=True)
def test_runstack_gives_its_processes_one_metrics_directory_emptied_at_start(start_runstack, product, tmp_path):
    # given: the metrics directory holds a file of an earlier run (unreadable, as a stale one may be)
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    stale = metrics_dir / "counter_999999.db"
    stale.write_bytes(b"an earlier run's counts")
    token = "metrics-token-for-tests-0123456789abcdef"

    # when: runstack starts, and a payment goes through daphne to its worker process
    stack = start_runstack(workers=1, threads=2, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir), METRICS_TOKEN=token)
    assert not stale.exists()
    payment_id = Shopper(stack.http_url, product.pk).pay(VISA_OK)["payment_id"]
    wait_until(lambda: status_of(payment_id) == "succeeded", timeout=30, message="the payment to settle")

    # then: daphne's /metrics shows what the worker process counted, from the worker's own file
    def settled() -> bool:
        page = httpx.get(f"{stack.http_url}/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=10)
        return 'payments_settled_total{outcome="succeeded"} 1.0' in page.text

    wait_until(settled, timeout=10, message="the worker's count on daphne's /metrics")
    (worker_pid,) = [pid for pid, role in stack.children().items() if role == "worker"]
    assert (metrics_dir / f"counter_{worker_pid}.db").exists()


def test_runstack_never_writes_the_redis_password_in_its_log(start_runstack):
    stack = start_runstack(workers=1, threads=2, redis_password="s3cret-redis-pass")
    log = stack.log()
    assert re.search(r"nothing answers at redis://:\*+@127\.0\.0\.1:", log), log
    assert "s3cret-redis-pass" not in log
