from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import pytest
import redis
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection

from checkout.models import Product
from infrastructure.embedded_redis import start_embedded_redis
from infrastructure.processes import spawn_child, stop_processes
from payments.cards import validate_card
from payments.models import Actor, Payment
from payments.services.cards import card_tokenize
from payments.services.dispatch import payments_queue
from payments.services.payments import payment_create

BASE_DIR = Path(settings.BASE_DIR)


@pytest.fixture
def redis_client():
    client = redis.Redis.from_url(settings.REDIS_URL)
    yield client
    client.close()


@pytest.fixture(autouse=True)
def clean_redis(redis_client):
    """Every test starts with an empty Redis: no job, group or key left by another test."""
    redis_client.flushdb()
    yield


@pytest.fixture(autouse=True)
def plain_static_storage(settings):
    """Production settings hash static files at collectstatic time; tests render pages without running it."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@dataclass
class LogCapture:
    stream: io.StringIO

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self) -> list[dict]:
        """Every line written, each parsed as the JSON object it must be."""
        return [json.loads(line) for line in self.text.splitlines() if line.strip()]


@pytest.fixture
def json_logs(monkeypatch):
    """What this process's log handler writes, rendered as production renders it (LOG_FORMAT=json, whatever the
    environment of the run says), into a buffer instead of stderr."""
    from infrastructure.logs import formatter

    (handler,) = [h for h in logging.getLogger().handlers if type(h) is logging.StreamHandler]
    capture = LogCapture(io.StringIO())
    monkeypatch.setattr(handler, "stream", capture.stream)
    monkeypatch.setattr(handler, "formatter", formatter("json"))
    return capture


@pytest.fixture
def postgresql_only():
    """For tests of lock waits and their timeouts: PostgreSQL's; CI runs them on PostgreSQL."""
    if connection.vendor != "postgresql":
        pytest.skip("lock waits and their timeouts are PostgreSQL's; CI runs this on PostgreSQL")


@pytest.fixture
def lock_holder(postgresql_only, transactional_db):
    """Another database session that takes the locks it is told to (`hold(sql, *params)`), as a stalled vault,
    a long transaction or a stalled table would; they are released when the test ends."""
    db = connection.settings_dict
    holder = psycopg.connect(
        host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, user=db["USER"], dbname=db["NAME"], autocommit=False
    )

    def hold(sql: str, *params):
        holder.execute(sql, params)

    yield hold
    holder.rollback()
    holder.close()


@pytest.fixture
def paused_queue_redis(settings):
    """The payments queue on a Valkey of the test's own, paused with SIGSTOP (never the shared server)."""
    server, url = start_embedded_redis(None)
    settings.RQ_QUEUES = {"payments": {**settings.RQ_QUEUES["payments"], "URL": url}}
    payments_queue.cache_clear()
    os.kill(server.process.pid, signal.SIGSTOP)
    try:
        yield server
    finally:
        os.kill(server.process.pid, signal.SIGCONT)
        server.stop()
        payments_queue.cache_clear()


@pytest.fixture
def product(db):
    return Product.objects.create(slug="espresso-beans", name="Espresso beans", price=2400, currency="USD", stock=10)


VISA_OK = "4242424242424242"
VISA_DECLINED = "4000000000000002"


@pytest.fixture
def make_payment(db):
    """Record a pending payment the way the checkout does (tokenized card, after-commit enqueue)."""

    def make(number: str = VISA_OK, amount: int = 2400, currency: str = "USD", guest_id=None) -> Payment:
        card = validate_card(
            number=number, exp_month=12, exp_year=2030, cvc="1234" if number[:2] in ("34", "37") else "123"
        )
        return payment_create(
            amount=amount,
            currency=currency,
            card=card_tokenize(card),
            actor=Actor.API,
            owner_guest_id=guest_id or uuid.uuid4(),
        )

    return make


def group_messages(group: str, trigger, count: int = 1, timeout: float = 5) -> list[dict]:
    """Listen on a channel-layer group, run the synchronous `trigger` on another thread (as a worker or a
    request thread pushes), and return the first `count` messages. One event loop throughout: the pub/sub
    layer's channels and subscriptions belong to the loop that made them."""

    async def listen() -> list[dict]:
        layer = get_channel_layer()
        channel = await layer.new_channel()
        await layer.group_add(group, channel)
        await asyncio.to_thread(trigger)
        return [await asyncio.wait_for(layer.receive(channel), timeout) for _ in range(count)]

    return asyncio.run(listen())


# --- A live stack: real daphne and real RQ worker processes on the test database -------------------------


# The worker `make run` starts (payments_worker), with fewer threads than its default: enough for jobs to
# run concurrently inside one process, few enough to start quickly.
WORKER_THREADS = "4"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _database_url_for_subprocesses() -> str:
    """The test database, as a URL the server and worker processes can open."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or ""
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host = db.get("HOST") or "127.0.0.1"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{user}{password}@{host}{port}/{db['NAME']}"


@dataclass
class LiveStack:
    http_url: str
    ws_url: str
    env: dict[str, str]
    log_dir: Path
    processes: list[subprocess.Popen] = field(default_factory=list)

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        if threading.current_thread() is threading.main_thread():
            # Dies with pytest if pytest is killed: no server or worker outlives the run.
            process = spawn_child(argv, env=self.env, cwd=BASE_DIR, stdout=log, stderr=subprocess.STDOUT)
        else:
            # PR_SET_PDEATHSIG fires when the *thread* that forked the child ends: a worker started by a test's
            # helper thread (the soak's killer) would die with that thread. stop() still ends it.
            process = subprocess.Popen(argv, env=self.env, cwd=BASE_DIR, stdout=log, stderr=subprocess.STDOUT)
        self.processes.append(process)
        return process

    def _manage(self, name: str, *args: str) -> subprocess.Popen:
        return self._spawn(name, [sys.executable, "manage.py", *args])

    def run_worker_burst(self, *, timeout: float = 60) -> None:
        """A real RQ worker that drains the queue and exits."""
        process = self._manage(
            f"worker-burst-{len(self.processes)}", "payments_worker", "--burst", "--threads", WORKER_THREADS
        )
        assert process.wait(timeout=timeout) == 0, self.logs()

    def start_worker(self, *, threads: int | str = WORKER_THREADS) -> subprocess.Popen:
        """A real worker process (`threads` RQ workers) that runs until stopped (or killed)."""
        number = len(self.processes)
        return self._manage(
            f"worker-{number}",
            "payments_worker",
            "--threads",
            str(threads),
            "--name",
            f"test-worker-{os.getpid()}-{number}",
        )

    def run_reconciler_once(self, *, timeout: float = 60) -> None:
        process = self._manage(f"reconciler-once-{len(self.processes)}", "payments_reconciler", "--once")
        assert process.wait(timeout=timeout) == 0, self.logs()

    def start_reconciler(self, *, interval: float = 0.5) -> subprocess.Popen:
        return self._manage(f"reconciler-{len(self.processes)}", "payments_reconciler", "--interval", str(interval))

    def manage(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """Run a management command against the stack's database and Redis, and return its output."""
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            env=self.env,
            cwd=BASE_DIR,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')}" for path in sorted(self.log_dir.glob("*.log"))
        )

    def stop(self) -> None:
        stop_processes(self.processes, grace=10)


@pytest.fixture
def live_stack_factory(transactional_db, tmp_path):
    """Start daphne on the test database, serving `application`; `env` overrides the environment of every
    process it starts."""
    stacks: list[LiveStack] = []

    def start(*, application: str = "config.asgi:application", **env_overrides: str) -> LiveStack:
        port = _free_port()
        env = {
            **os.environ,
            "DATABASE_URL": _database_url_for_subprocesses(),
            "REDIS_URL": settings.REDIS_URL,
            # As `make run` runs it: static files straight from static/, no collectstatic needed.
            "DJANGO_DEBUG": "true",
            "PYTHONUNBUFFERED": "1",
            # Every email a process of the stack sends (receipts) is a file here, never in the checkout's var/mail/.
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "EMAIL_FILE_PATH": str(tmp_path / f"mail-{len(stacks)}"),
            "SHOP_BASE_URL": f"http://127.0.0.1:{port}",
            **env_overrides,
        }
        log_dir = tmp_path / f"stack-{len(stacks)}"
        log_dir.mkdir()
        stack = LiveStack(
            http_url=f"http://127.0.0.1:{port}", ws_url=f"ws://127.0.0.1:{port}", env=env, log_dir=log_dir
        )
        stacks.append(stack)
        stack._spawn("daphne", [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), application])
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(stack.http_url + "/", timeout=1)
                return stack
            except httpx.TransportError:
                if time.monotonic() > deadline or stack.processes[0].poll() is not None:
                    pytest.fail("daphne did not start:\n" + stack.logs())
                time.sleep(0.2)

    yield start
    for stack in stacks:
        stack.stop()


@pytest.fixture
def live_stack(live_stack_factory):
    return live_stack_factory()


def wait_until(predicate, *, timeout: float, interval: float = 0.2, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {message}")
