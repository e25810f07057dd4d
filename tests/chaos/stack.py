"""The stack a chaos run breaks: bench/stack.py's Stack (a fresh PostgreSQL database, migrated; daphne and
payments_worker processes as runstack starts them, spawned to die with the harness), on the product's own
settings and ASGI application (no bench-only endpoint), plus what chaos needs:

- a Valkey server the harness owns on a free port of 127.0.0.1 (infrastructure/embedded_redis.py), which it can stop
  and start again empty on the same port, or pause; never the shared Redis on 6379;
- the reconciler, as runstack starts it;
- daphne on a fixed port, so that a restarted daphne is where the clients (and their sockets) left it;
- supervision: a worker or reconciler that exits is started again after 1 s (doubling, up to 30 s, while it
  keeps dying), as `manage.py runstack` does. The harness supervises rather than running runstack itself
  because it must reach each worker's pid (to SIGKILL or SIGSTOP that one process) and restart daphne alone:
  runstack stops everything when daphne exits. The policy is runstack's, so recovery is measured with the
  supervisor production would have.

Everything here runs on the harness's main thread: a child dies with the *thread* that spawned it
(PR_SET_PDEATHSIG, infrastructure/processes.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from bench.stack import PYTHON, Child, Stack, free_port, wait_until_web_answers
from infrastructure.embedded_redis import EmbeddedRedis
from infrastructure.processes import stop_in_order

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
RESTART_DELAY_SECONDS = 1.0  # runstack's
RESTART_DELAY_MAX_SECONDS = 30.0
RAN_LONG_ENOUGH_SECONDS = 60.0


def require_local_postgres(url: str) -> None:
    """Fail clearly unless DATABASE_URL is PostgreSQL on this machine."""
    parts = urlsplit(url or "")
    if not parts.scheme.startswith("postgres"):
        raise SystemExit(
            "make chaos runs on PostgreSQL only: set DATABASE_URL=postgres://postgres@127.0.0.1:5432/checkout_chaos "
            f"(the harness drops and creates its own database, checkout_chaos, on that server); got {url!r}"
        )
    if (parts.hostname or "127.0.0.1") not in LOCAL_HOSTS:
        raise SystemExit(f"make chaos runs everything on 127.0.0.1; DATABASE_URL points at {parts.hostname}")


@dataclass
class Exit:
    """A process of the stack that exited, and whether the harness meant it to."""

    name: str
    pid: int
    code: int | None
    at: float  # time.time()
    planned: bool


@dataclass
class _Slot:
    name: str
    child: Child | None
    restart_at: float | None = None
    restart_delay: float = RESTART_DELAY_SECONDS
    started_at: float = field(default_factory=time.monotonic)


class ChaosStack(Stack):
    # The product as it ships (config/settings.py, config/asgi.py): chaos goes through public surfaces only.
    settings_module = "config.settings"
    asgi_application = "config.asgi:application"

    def __init__(self, *, log_dir: Path, database_url: str, database_name: str, extra_env: dict[str, str]):
        super().__init__(log_dir=log_dir, database_url=database_url, database_name=database_name)
        self.extra_env = extra_env
        self.valkey: EmbeddedRedis | None = None
        self.valkey_port = 0
        self.web_port = 0
        self.slots: list[_Slot] = []  # workers, then the reconciler
        self.planned_exits: set[int] = set()  # pids the harness killed
        self.stopped: set[int] = set()  # pids under SIGSTOP
        self.exits: list[Exit] = []
        self.web_restarting = False

    # --- services ---------------------------------------------------------------------------------------
    def setup(self) -> None:
        require_local_postgres(self.database_url)
        self.valkey_port = free_port()
        self.redis_start()
        self.redis_url = f"redis://127.0.0.1:{self.valkey_port}/0"
        super().setup()  # the database afresh, migrated; self.env
        self.env.update(self.extra_env)
        # DEBUG is off, as in production: pages name their static files through collectstatic's manifest.
        self.manage("collectstatic", "--noinput", timeout=300)
        self.redis_kind = self.redis_kind.replace("given", "embedded Valkey owned by the harness on " + self.redis_url)

    def redis_start(self) -> None:
        self.valkey = EmbeddedRedis(host="127.0.0.1", port=self.valkey_port)
        self.valkey.start()

    def redis_stop(self) -> None:
        """Stop the server (SIGTERM: it saves nothing and exits at once); every key is gone with it."""
        if self.valkey is not None:
            self._keep_valkey_log()
            self.valkey.stop(timeout=2)
            self.valkey = None

    def redis_signal(self, signum: int) -> None:
        if self.valkey is not None and self.valkey.is_running():
            os.kill(self.valkey.process.pid, signum)

    def _keep_valkey_log(self) -> None:
        text = self.valkey.log() if self.valkey is not None else ""
        if text:
            with open(self.log_dir / "valkey.log", "a") as log:
                log.write(text)

    # --- processes --------------------------------------------------------------------------------------
    def start_all(self, *, workers: int, threads: int) -> None:
        self.web_port = free_port()
        self.web_url = f"http://127.0.0.1:{self.web_port}"
        self.web = self._spawn("daphne", self.daphne_argv(self.web_port), self.env)
        self.threads = threads
        for number in range(1, workers + 1):
            self.slots.append(_Slot(f"worker-{number}", self._start_worker(threads)))
            self.slots[-1].child.name = self.slots[-1].name
        self.slots.append(_Slot("reconciler", self._start_reconciler()))

    def _start_worker(self, threads: int) -> Child:
        (child,) = self.start_workers(1, threads=threads)
        return child

    def _start_reconciler(self) -> Child:
        return self._spawn("reconciler", [PYTHON, "manage.py", "payments_reconciler"], self.env)

    async def wait_ready(self, timeout: float = 60) -> None:
        await self.wait_web(timeout)
        await asyncio.to_thread(self.wait_workers_ready, timeout=timeout)

    async def wait_web(self, timeout: float = 30) -> None:
        """Until daphne answers (a cheap 401), off the event loop."""
        await asyncio.to_thread(wait_until_web_answers, self.web, self.web_url, timeout)

    def worker_children(self) -> list[Child]:
        return [slot.child for slot in self.slots if slot.name.startswith("worker") and slot.child is not None]

    def running_workers(self) -> list[tuple[str, Child]]:
        """Workers that are alive and not stopped: what a fault may pick."""
        return [
            (slot.name, slot.child)
            for slot in self.slots
            if slot.name.startswith("worker")
            and slot.child is not None
            and slot.child.process.poll() is None
            and slot.child.pid not in self.stopped
        ]

    def kill_workers(self, rng: random.Random, count: int) -> list[str]:
        victims = rng.sample(self.running_workers(), min(count, len(self.running_workers())))
        for _, child in victims:
            self.planned_exits.add(child.pid)
            os.kill(child.pid, signal.SIGKILL)
        return [f"{name} (pid {child.pid})" for name, child in victims]

    def stop_worker(self, rng: random.Random) -> tuple[str, Child] | None:
        running = self.running_workers()
        if not running:
            return None
        name, child = rng.choice(running)
        self.stopped.add(child.pid)
        os.kill(child.pid, signal.SIGSTOP)
        return name, child

    def continue_worker(self, child: Child) -> None:
        self.stopped.discard(child.pid)
        if child.process.poll() is None:
            os.kill(child.pid, signal.SIGCONT)

    async def restart_web(self, grace: float = 5.0) -> float:
        """SIGTERM daphne with whatever sockets are open (SIGKILL past `grace`), start a new one on the same
        port; returns the seconds until the new one answered."""
        self.web_restarting = True
        try:
            old = self.web
            began = time.monotonic()
            old.process.send_signal(signal.SIGTERM)
            while old.process.poll() is None and time.monotonic() - began < grace:
                await asyncio.sleep(0.05)
            if old.process.poll() is None:
                old.process.kill()
                old.process.wait()
            self.exits.append(Exit("daphne", old.pid, old.process.returncode, time.time(), planned=True))
            self.web = self._spawn("daphne", self.daphne_argv(self.web_port), self.env)
            await self.wait_web()
            return time.monotonic() - began
        finally:
            self.web_restarting = False

    def supervise(self) -> list[str]:
        """Start again what exited (runstack's policy); returns what it did, for the run's log."""
        notes = []
        now = time.monotonic()
        for slot in self.slots:
            if slot.child is None:
                if slot.restart_at is not None and now >= slot.restart_at:
                    slot.child = (
                        self._start_reconciler() if slot.name == "reconciler" else self._start_worker(self.threads)
                    )
                    slot.child.name = slot.name
                    slot.started_at, slot.restart_at = now, None
                    notes.append(f"{slot.name} started again (pid {slot.child.pid})")
                continue
            code = slot.child.process.poll()
            if code is None:
                continue
            planned = slot.child.pid in self.planned_exits
            self.exits.append(Exit(slot.name, slot.child.pid, code, time.time(), planned))
            if slot.child in self.workers:
                self.workers.remove(slot.child)
            if now - slot.started_at >= RAN_LONG_ENOUGH_SECONDS or planned:
                slot.restart_delay = RESTART_DELAY_SECONDS
            notes.append(
                f"{slot.name} (pid {slot.child.pid}) exited with {code}"
                f"{'' if planned else ' UNEXPECTEDLY'}; starting it again in {slot.restart_delay:g} s"
            )
            slot.child, slot.restart_at = None, now + slot.restart_delay
            slot.restart_delay = min(slot.restart_delay * 2, RESTART_DELAY_MAX_SECONDS)
        if not self.web_restarting and self.web is not None and self.web.process.poll() is not None:
            self.exits.append(Exit("daphne", self.web.pid, self.web.process.returncode, time.time(), planned=False))
            notes.append(f"daphne exited UNEXPECTEDLY with {self.web.process.returncode}; starting it again")
            self.web = self._spawn("daphne", self.daphne_argv(self.web_port), self.env)
        if self.valkey is not None and not self.valkey.is_running():
            notes.append("Valkey exited UNEXPECTEDLY; starting it again (empty)")
            self.exits.append(
                Exit("valkey", self.valkey.process.pid, self.valkey.process.returncode, time.time(), False)
            )
            self.redis_stop()
            self.redis_start()
        return notes

    def close(self) -> None:
        """Stop everything this stack started, in runstack's order (web, workers, reconciler), then Valkey."""
        for pid in list(self.stopped):  # a stopped process cannot act on SIGTERM
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        self.stopped.clear()
        reconciler = [slot.child.process for slot in self.slots if slot.name == "reconciler" and slot.child]
        stages = [
            ("web", [self.web.process] if self.web else [], 12.0),
            ("workers", [child.process for child in self.worker_children()], 2.0),
            ("reconciler", reconciler, 0.0),
        ]
        stop_in_order(stages, within=15.0)
        self.web = None
        self.workers = []
        for slot in self.slots:
            slot.child, slot.restart_at = None, None
        self.redis_stop()

    def log_files(self) -> list[Path]:
        return sorted(path for path in self.log_dir.iterdir() if path.is_file())
