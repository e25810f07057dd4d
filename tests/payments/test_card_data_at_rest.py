"""Nothing from which a card number or CVC can be recovered is stored (issue 10, item 3)."""

import os
import stat
import subprocess
import sys

from django.conf import settings

from payments.models import IdempotencyRecord
from tests.api.helpers import BODY, CARD, client_for, create


def test_the_stored_request_fingerprint_does_not_depend_on_the_cvc(db):
    # given: two requests that differ only in the CVC
    api = client_for("merchant")
    create(api, {**BODY, "card": {**CARD, "cvc": "123"}}, key="a")
    create(api, {**BODY, "card": {**CARD, "cvc": "987"}}, key="b")
    # then: what the database keeps of them is the same: no CVC can be brute-forced from it
    first, second = (IdempotencyRecord.objects.get(key=key) for key in ("a", "b"))
    assert first.request_fingerprint == second.request_fingerprint


def _settings_in_a_fresh_process(**env) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SECRET_KEY", "CARD_FINGERPRINT_KEY")}
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.SECRET_KEY); print(s.CARD_FINGERPRINT_KEY)"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_production_refuses_to_start_without_a_card_fingerprint_key_of_its_own():
    secret = "a-production-secret-key-that-is-long-enough-0123456789"
    missing = _settings_in_a_fresh_process(DJANGO_DEBUG="false", DJANGO_SECRET_KEY=secret)
    assert missing.returncode != 0 and "CARD_FINGERPRINT_KEY must be set" in missing.stderr
    same = _settings_in_a_fresh_process(DJANGO_DEBUG="false", DJANGO_SECRET_KEY=secret, CARD_FINGERPRINT_KEY=secret)
    assert same.returncode != 0 and "CARD_FINGERPRINT_KEY must be a secret of its own" in same.stderr


def test_development_secrets_are_random_kept_under_var_and_stable():
    # when: the app starts twice in development mode (make run) with no secrets in the environment
    runs = [_settings_in_a_fresh_process(DJANGO_DEBUG="true") for _ in range(2)]
    # then: both use the same two secrets, generated (not constants from the repository) and private
    assert all(run.returncode == 0 for run in runs), runs[0].stderr
    secret_key, fingerprint_key = runs[0].stdout.split()
    assert runs[1].stdout.split() == [secret_key, fingerprint_key]
    assert secret_key != fingerprint_key and len(fingerprint_key) >= 32
    assert "insecure" not in secret_key
    for name, value in (("DJANGO_SECRET_KEY", secret_key), ("CARD_FINGERPRINT_KEY", fingerprint_key)):
        path = settings.BASE_DIR / "var" / "dev-secrets" / name
        assert path.read_text().strip() == value
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
