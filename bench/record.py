"""What the harnesses' reports are made of: the machine a run ran on, the run's raw JSON, and the Markdown
cells its figures are written in. A leaf of bench/ (it imports nothing of it), so the report of every
scenario and of `make chaos` can use it."""

from __future__ import annotations

import json
import math
import os
import platform
import sys
from datetime import datetime
from importlib import metadata
from pathlib import Path


def machine(packages: tuple[str, ...]) -> dict:
    memory_kib = proc_field("/proc/meminfo", "MemTotal:", "")
    return {
        "nproc": os.cpu_count(),
        "cpu": proc_field("/proc/cpuinfo", "model name", platform.processor() or "?"),
        "memory_gib": round(int(memory_kib.split()[0]) / 1024 / 1024, 1) if memory_kib else math.nan,
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "load_average": os.getloadavg()[0],
        "packages": {name: _version(name) for name in packages},
    }


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "?"


def proc_field(path: str, name: str, default: str) -> str:
    """The value of the first `name: value` line of a /proc file, or `default`."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(name):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return default


def write_json(run: dict, path: Path) -> Path:
    path.write_text(json.dumps(run, indent=1, default=str, allow_nan=True) + "\n")
    return path


def fmt(value, digits: int = 1) -> str:
    """A figure with thousands separators; — for none (None or NaN)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:,.{digits}f}"


def table(header: str, rows, *, left: int = 1) -> list[str]:
    """A Markdown table; `header` is its cells joined by " | ". The first `left` columns align left, the rest
    (the figures) right."""
    cells = header.split(" | ")
    rule = "".join("|---" if column < left else "|---:" for column in range(len(cells))) + "|"
    return [_row(cells), rule, *(_row(row) for row in rows)]


def _row(cells) -> str:
    return "|" + "".join(f" {cell} |" if str(cell) else " |" for cell in cells)


def pct(share) -> str:
    return "—" if share is None else f"{share * 100:.0f} %"


def yes(flag: bool) -> str:
    return "**yes**" if flag else "**no**"


def ratio_text(value: float, target: float, unit: str = "") -> str:
    """Two decimals, or three where two would round across the target (0.496 is not 0.50)."""
    digits = 2 if (round(value, 2) >= target) == (value >= target) else 3
    return f"**{value:.{digits}f}{unit}**"


def when(stamp: str) -> str:
    """20261124T053709Z → 2026-11-24 05:37 UTC"""
    try:
        return datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return stamp
