"""LOG_FORMAT: JSON lines unless DJANGO_DEBUG is on (make run), where the same events are readable text; anything
else stops start-up (docs/operations.md, "Logs"). A real process each time: the format is fixed at start-up."""

import json
import os
import subprocess
import sys

import pytest
from django.conf import settings

LOG_A_LINE = "import logging; logging.getLogger('probe').warning('probe %s', 'line')"


def _run(**env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k != "LOG_FORMAT"} | env
    return subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", LOG_A_LINE],
        env=environment,
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_production_logs_json_lines():
    done = _run(DJANGO_DEBUG="false")
    assert done.returncode == 0, done.stderr
    (line,) = [json.loads(text) for text in done.stderr.splitlines() if "probe" in text]
    assert line["event"] == "probe line" and line["level"] == "warning" and line["logger"] == "probe"
    assert line["timestamp"].endswith("Z")


@pytest.mark.parametrize("env", [{"DJANGO_DEBUG": "true"}, {"DJANGO_DEBUG": "false", "LOG_FORMAT": "console"}])
def test_make_run_logs_readable_text(env):
    done = _run(**env)
    assert done.returncode == 0, done.stderr
    (text,) = [text for text in done.stderr.splitlines() if "probe" in text]
    assert "[warning  ] probe line" in text and not text.startswith("{")


def test_an_unknown_format_stops_start_up():
    # As daphne starts (config/asgi.py): manage.py would report the error and run its own commands on.
    done = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "LOG_FORMAT": "xml"},
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "LOG_FORMAT must be json or console, not 'xml'" in done.stderr
