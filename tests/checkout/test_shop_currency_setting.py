"""SHOP_CURRENCY is read as the shop's one currency in any case, and a currency we do not take stops start-up
(config/settings.py): before, `SHOP_CURRENCY=usd` started a shop whose every checkout failed validation."""

import os
import subprocess
import sys

from django.conf import settings


def _setting(value: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings; print(settings.SHOP_CURRENCY)",
        ],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "DJANGO_DEBUG": "true", "SHOP_CURRENCY": value},
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_lower_case_shop_currency_is_the_upper_case_code():
    done = _setting(" usd ")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "USD"


def test_a_currency_we_do_not_take_stops_start_up():
    done = _setting("XYZ")
    assert done.returncode != 0
    assert "SHOP_CURRENCY='XYZ' is not one of USD" in done.stderr
