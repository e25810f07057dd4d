"""The fault injectors, and the loop that fires them on the schedule (plan.py) while the load runs.

Each injector does one thing an operator fears, the way it happens in production, and returns what it hit.
Faults are fired one after another at their planned offsets (the schedules leave each one room to recover
before the next, so a recovery time belongs to one fault); the record says when each really started and
ended, which is what recovery.py measures from.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from tests.chaos import plan
from tests.chaos.stack import ChaosStack

HARNESS_APPLICATION_NAME = "chaos-harness"


@dataclass
class FaultRecord:
    kind: str
    target: str
    planned_at: float  # offsets from the load's start, seconds
    started_at: float = 0.0
    ended_at: float = 0.0
    detail: str = ""
    error: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def bank_fault_set(path: Path, word: str) -> None:
    """What the sandbox bank reads on its next call (payments/sandbox/gateway.py): a new file renamed over the
    old one, so no reader ever sees half of it and every process notices the change (a new inode)."""
    fresh = path.with_suffix(".new")
    fresh.write_text(word)
    os.replace(fresh, path)


class Injector:
    def __init__(
        self,
        *,
        stack: ChaosStack,
        faults: tuple[plan.Fault, ...],
        faults_file: Path,
        database: dict,
        rng: random.Random,
        log: Callable[[str], None],
        before_redis_restart: Callable[[], Awaitable[None]],
        open_sockets: Callable[[], int],
    ):
        self.stack = stack
        self.faults = sorted(faults, key=lambda fault: fault.at)
        self.faults_file = faults_file
        self.database = database  # psycopg.connect() arguments for the run's database
        self.rng = rng
        self.log = log
        self.before_redis_restart = before_redis_restart
        self.open_sockets = open_sockets
        self.records: list[FaultRecord] = []
        bank_fault_set(faults_file, "")

    async def run(self, started: float) -> list[FaultRecord]:
        """Fire every fault at `started` (time.monotonic()) + its offset; returns their records."""
        for fault in self.faults:
            delay = started + fault.at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if fault.kind == plan.REDIS_RESTART:
                # What the server holds is searched for card data before it is lost; not part of the fault.
                await self.before_redis_restart()
            record = FaultRecord(fault.kind, fault.target, fault.at)
            self.records.append(record)
            self.log(f"FAULT {fault.kind}: {fault.target}")
            record.started_at = time.monotonic() - started
            try:
                record.detail = await self._inject(fault)
            except Exception as error:  # a fault that could not be injected is reported, not fatal
                record.error = f"{type(error).__name__}: {error}"
                self.log(f"FAULT {fault.kind} could not be injected: {record.error}")
            finally:
                record.ended_at = time.monotonic() - started
            self.log(f"FAULT {fault.kind} over after {record.ended_at - record.started_at:.1f} s: {record.detail}")
        return self.records

    async def _inject(self, fault: plan.Fault) -> str:
        handler = {
            plan.WORKER_SIGKILL: self._worker_sigkill,
            plan.WORKER_SIGSTOP: self._worker_sigstop,
            plan.REDIS_RESTART: self._redis_restart,
            plan.REDIS_PAUSE: self._redis_pause,
            plan.PG_TERMINATE: self._pg_terminate,
            plan.DB_STALL: self._db_stall,
            plan.DAPHNE_RESTART: self._daphne_restart,
            plan.BANK_UNAVAILABLE: self._bank,
            plan.BANK_TIMEOUT: self._bank,
        }[fault.kind]
        return await handler(fault)

    async def _worker_sigkill(self, fault: plan.Fault) -> str:
        killed = self.stack.kill_workers(self.rng, fault.count)
        return "SIGKILL " + ", ".join(killed) if killed else "no running worker to kill"

    async def _worker_sigstop(self, fault: plan.Fault) -> str:
        stopped = self.stack.stop_worker(self.rng)
        if stopped is None:
            return "no running worker to stop"
        name, child = stopped
        try:
            await asyncio.sleep(fault.duration)
        finally:
            self.stack.continue_worker(child)
        return f"SIGSTOP {name} (pid {child.pid}), SIGCONT after {fault.duration:g} s"

    async def _redis_restart(self, fault: plan.Fault) -> str:
        self.stack.redis_stop()
        await asyncio.sleep(fault.duration)
        self.stack.redis_start()
        return f"stopped, new empty server on port {self.stack.valkey_port} after {fault.duration:g} s"

    async def _redis_pause(self, fault: plan.Fault) -> str:
        self.stack.redis_signal(signal.SIGSTOP)
        try:
            await asyncio.sleep(fault.duration)
        finally:
            self.stack.redis_signal(signal.SIGCONT)
        return f"SIGSTOP, SIGCONT after {fault.duration:g} s"

    async def _connect(self):
        import psycopg

        return await psycopg.AsyncConnection.connect(
            **self.database, autocommit=True, application_name=HARNESS_APPLICATION_NAME, connect_timeout=5
        )

    async def _pg_terminate(self, fault: plan.Fault) -> str:
        async with await self._connect() as conn:
            cursor = await conn.execute(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                " AND backend_type = 'client backend' AND application_name NOT LIKE %s",
                (f"{HARNESS_APPLICATION_NAME}%",),
            )
            (terminated,) = await cursor.fetchone()
        return f"{terminated} backends terminated"

    async def _db_stall(self, fault: plan.Fault) -> str:
        async with await self._connect() as conn:
            # Our own session: none of the app's timers apply to it (they are set per app connection).
            await conn.execute("SET lock_timeout = '15s'")
            await conn.set_autocommit(False)
            asked = time.monotonic()
            await conn.execute(f"LOCK TABLE {plan.STALL_TABLE} IN {plan.STALL_MODE} MODE")
            granted = time.monotonic()
            try:
                await asyncio.sleep(fault.duration)
            finally:
                await conn.commit()
        return (
            f"{plan.STALL_MODE} on {plan.STALL_TABLE} granted after {(granted - asked) * 1000:.0f} ms, "
            f"held {time.monotonic() - granted:.1f} s"
        )

    async def _daphne_restart(self, fault: plan.Fault) -> str:
        sockets = self.open_sockets()
        old = self.stack.web.pid
        took = await self.stack.restart_web()
        return (
            f"SIGTERM pid {old} with {sockets} WebSockets open; pid {self.stack.web.pid} answering after {took:.1f} s"
        )

    async def _bank(self, fault: plan.Fault) -> str:
        word = "unavailable" if fault.kind == plan.BANK_UNAVAILABLE else "timeout"
        bank_fault_set(self.faults_file, word)
        try:
            await asyncio.sleep(fault.duration)
        finally:
            bank_fault_set(self.faults_file, "")
        return f"sandbox bank '{word}' for {fault.duration:g} s"
