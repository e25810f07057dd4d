"""Starting and stopping the child processes a supervisor owns (make run, make bench, the test stacks).

Two promises, both for `manage.py runstack` (docs/operations.md, "Supervision and shutdown"):
- a child never outlives its supervisor, even one killed with SIGKILL: `spawn_child` asks the kernel to kill
  the child when the thread that started it dies (Linux `PR_SET_PDEATHSIG`);
- a stop goes in stages, within one deadline: `stop_in_order` stops each stage (e.g. the web server, then the
  workers, then the reconciler, then Redis) before it signals the next one.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>

# Loaded in the parent: the child, between fork and exec, should do as little as it can.
_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True) if sys.platform.startswith("linux") else None


def _die_with_parent(parent_pid: int) -> Callable[[], None] | None:
    """A preexec hook that makes the child die (SIGKILL) when its parent dies; None where the kernel cannot.

    SIGKILL rather than SIGTERM: with its supervisor gone nobody would escalate a warm stop that hangs (a
    worker waiting for a Redis that died in the same instant), and whatever a killed worker held is re-driven
    by the reconciler, as for any lost worker.
    """
    if _libc is None:
        return None

    def preexec() -> None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        # The parent may have died between fork() and prctl(): then nothing would ever signal us.
        if os.getppid() != parent_pid:
            os._exit(1)

    return preexec


def spawn_child(argv: Sequence[str], *, env: dict[str, str] | None = None, **popen_kwargs) -> subprocess.Popen:
    """Start `argv` in a process group of its own that dies with its parent.

    Its own group: a terminal's Ctrl-C (SIGINT to the foreground group) reaches only the supervisor, which stops
    the children once and in order. Dies with the parent: `PR_SET_PDEATHSIG` fires when the *thread* that
    forked the child ends, so call this from a thread that lives as long as the supervisor (its main thread).
    """
    return subprocess.Popen(  # noqa: S603 - the supervisor's own argv
        list(argv),
        env=env,
        process_group=0,
        preexec_fn=_die_with_parent(os.getpid()),  # noqa: PLW1509 - the supervisors spawn from one thread
        **popen_kwargs,
    )


def _running(processes: Sequence[subprocess.Popen | None]) -> list[subprocess.Popen]:
    return [process for process in processes if process is not None and process.poll() is None]


def _signal_and_wait(running: list[subprocess.Popen], deadline: float) -> bool:
    """SIGTERM every process, wait for them until `deadline`, SIGKILL those left. True when none was killed."""
    for process in running:
        process.send_signal(signal.SIGTERM)
    clean = True
    for process in running:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            clean = False
            process.kill()
            process.wait()
    return clean


def stop_in_order(
    stages: Sequence[tuple[str, Sequence[subprocess.Popen | None], float]],
    *,
    within: float,
    report: Callable[[str], None] | None = None,
) -> int:
    """Stop `stages` one after another, all within `within` seconds; returns how many processes were running.

    Each stage is (name, processes, reserve): its processes get SIGTERM together once the stages before it
    are gone, and may take until the overall deadline minus `reserve` (the time kept for the stages after
    it), when what is left gets SIGKILL. So a worker finishing a payment has as long as the later stages can
    spare, and Redis, stopped last, is there for every push and acknowledgement before it.
    """
    start = time.monotonic()
    deadline = start + within
    stopped = 0
    for name, processes, reserve in stages:
        running = _running(processes)
        if not running:
            continue
        stage_started = time.monotonic()
        clean = _signal_and_wait(running, max(stage_started, deadline - reserve))
        stopped += len(running)
        if report is not None:
            how = "stopped" if clean else "killed after its share of the deadline"
            report(f"{name}: {how} in {time.monotonic() - stage_started:.1f} s")
    return stopped


def stop_processes(processes: Sequence[subprocess.Popen | None], *, grace: float = 10) -> int:
    """SIGTERM every running one, give them `grace` seconds together, then SIGKILL what is left.

    Returns how many were running. An RQ worker's warm shutdown finishes its current job within the grace.
    """
    return stop_in_order([("processes", processes, 0.0)], within=grace)
