"""`make token` prints a working API token on a fresh checkout (issue 13, item 4): the README's command before it,
`python manage.py drf_create_token staff`, stopped at once without DJANGO_DEBUG (no secret key), and the user it
named was no API client."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# What a developer's shell has: none of the variables the test run sets (tests/testenv.py sets DJANGO_DEBUG=false).
TEST_RUN_VARIABLES = (
    "DATABASE_URL",
    "DJANGO_DEBUG",
    "DJANGO_SECRET_KEY",
    "CARD_FINGERPRINT_KEY",
    "DJANGO_ALLOWED_HOSTS",
)


@pytest.fixture
def fresh_checkout(tmp_path) -> Path:
    """The repository's files as a clone has them (tracked, and new ones not ignored), nothing generated: no var/
    (database, development secrets). Its .venv is the one running the tests: the copy must not install anything."""
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    checkout = tmp_path / "checkout"
    for name in filter(None, (f.decode() for f in files)):
        source = ROOT / name
        if name == ".venv" or not source.is_file():
            continue  # the .venv symlink some worktrees have; files deleted but not yet committed
        (checkout / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, checkout / name)
    (checkout / ".venv").symlink_to(Path(sys.prefix))
    assert not (checkout / "var").exists()
    return checkout


def _make_token(checkout: Path) -> subprocess.CompletedProcess:
    env = {name: value for name, value in os.environ.items() if name not in TEST_RUN_VARIABLES}
    # -o: the install step counts as done. It is, for the .venv above, and it would otherwise reinstall the
    # project into that shared environment from this temporary copy.
    return subprocess.run(
        ["make", "-s", "-o", ".venv/.installed-run", "token"],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _manage(checkout: Path, code: str) -> str:
    env = {name: value for name, value in os.environ.items() if name not in TEST_RUN_VARIABLES}
    env["DJANGO_DEBUG"] = "true"
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-v", "0", "-c", code],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout.strip()


def test_make_token_prints_a_token_of_the_demo_api_user_on_a_fresh_checkout(fresh_checkout):
    # when: a newcomer asks for a token, nothing set up yet
    first = _make_token(fresh_checkout)
    # then: the token, alone on stdout (TOKEN=$(make -s token) works); the seeding's lines on stderr
    assert first.returncode == 0, first.stderr
    assert re.fullmatch(r"[0-9a-f]{40}\n", first.stdout), first.stdout
    assert "API user: merchant" in first.stderr
    token = first.stdout.strip()
    # and it is the merchant's, who may refund, and who cannot sign in to the admin
    user = f"Token.objects.get(key='{token}').user"
    described = _manage(
        fresh_checkout,
        "from rest_framework.authtoken.models import Token; "
        f"print({user}.username, {user}.has_perm('payments.refund_payment'), {user}.has_usable_password())",
    )
    assert described == "merchant True False"
    # when: asked again (or after `make run`, which seeds too)
    again = _make_token(fresh_checkout)
    # then: the same token
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == token
