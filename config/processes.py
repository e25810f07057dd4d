"""Stopping the child processes a supervisor started (make run, make bench, the test stacks)."""

from __future__ import annotations

import signal
import subprocess
import time


def stop_processes(processes: list[subprocess.Popen], *, grace: float = 10) -> int:
    """SIGTERM every running one, give them `grace` seconds together, then SIGKILL what is left.

    Returns how many were running. An RQ worker's warm shutdown finishes its current job within the grace.
    """
    running = [process for process in processes if process is not None and process.poll() is None]
    for process in running:
        process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for process in running:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return len(running)
