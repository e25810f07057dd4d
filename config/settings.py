"""One settings module, read from the environment (see .env.example).

Development defaults are safe only with DJANGO_DEBUG on; with it off, the secret key and allowed hosts must
come from the environment or start-up stops with a message that says which one is missing.
"""

import hashlib
import hmac
import os
import secrets
from pathlib import Path

import environ
from csp.constants import NONCE as CSP_NONCE
from csp.constants import NONE as CSP_NONE
from csp.constants import SELF as CSP_SELF
from django.core.exceptions import ImproperlyConfigured

from payments.currencies import SUPPORTED_CURRENCIES

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
# A developer's .env is read when present; the real environment always wins over it.
if (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DJANGO_DEBUG", default=False)


def _required_in_production(name: str, dev_default):
    value = env(name, default=None)
    if value:
        return value
    if DEBUG:
        return dev_default() if callable(dev_default) else dev_default
    raise ImproperlyConfigured(f"{name} must be set in the environment when DJANGO_DEBUG is off (see .env.example).")


def _development_secret(name: str) -> str:
    """A random secret made once per checkout and kept in var/ (never a constant in the repository: anyone
    could then forge tokens, or brute-force card fingerprints, on a developer's machine)."""
    path = VAR_DIR / "dev-secrets" / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as file:
                file.write(secrets.token_urlsafe(48))
        except FileExistsError:
            pass  # another process of `make run` wrote it first: use theirs
    return path.read_text().strip()


SECRET_KEY = _required_in_production("DJANGO_SECRET_KEY", lambda: _development_secret("DJANGO_SECRET_KEY"))
ALLOWED_HOSTS = [h.strip() for h in _required_in_production("DJANGO_ALLOWED_HOSTS", "*").split(",") if h.strip()]
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_rq",
    "channels",
    "checkout",
    "payments",
    "payments.sandbox",
    "webhooks",
]

MIDDLEWARE = [
    # First: every line logged while a request is served carries its id, and every answer says it (X-Request-ID).
    "infrastructure.middleware.RequestIdMiddleware",
    # RFC 9110's reason phrases (422 Unprocessable Content) on every answer, errors from the layers below included.
    "infrastructure.middleware.ReasonPhraseMiddleware",
    # A problem document's `type` made an absolute URL on the request's origin (infrastructure/problem_types.py).
    "infrastructure.problem_types.ProblemTypeMiddleware",
    # /healthz and /readyz answered here, before host validation, the HTTPS redirect and the session: a load
    # balancer asks by the instance's address, over HTTP, with no cookie (infrastructure/middleware.py).
    "infrastructure.middleware.ProbeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",  # the Content-Security-Policy below
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Django's, with a database fault while saving the session answered 503 like any other (infrastructure/sessions.py).
    "infrastructure.sessions.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    # A lock or statement timeout anywhere in a request: 503 with Retry-After, not a 500 (infrastructure/middleware.py).
    "infrastructure.middleware.DatabaseBusyMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "checkout.context_processors.cart_count",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(exist_ok=True)
    # The web server and the workers are separate processes writing one file: WAL lets readers go on
    # while a worker writes, IMMEDIATE takes the write lock at BEGIN (so select_for_update-style
    # read-then-write sections cannot deadlock), and the timeout waits out a busy writer.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file, not :memory:, so that the real server and worker processes the integration tests start
    # can open the same test database (they are told its path); one per test run, so that two runs at
    # once do not share it.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-db-{os.getpid()}.sqlite3")}
else:
    # 0: under daphne every request runs in a thread of its own, and a worker process runs many jobs on
    # threads, so a kept-alive connection per thread would pile up until PostgreSQL refuses new ones (seen
    # at 64 clients in make bench). Instead each process borrows from a small pool for the length of a
    # request or a transaction, and waits for a free one under load rather than opening more.
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=0))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # Every wait is bounded, so no request or job can sit on a stalled database past a timer of ours and
    # wake up later to act on what it read before: a lock wait fails after DATABASE_LOCK_TIMEOUT_MS, a
    # statement after DATABASE_STATEMENT_TIMEOUT_MS, and a session that stalls inside a transaction (a
    # paused process) is ended after DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS, releasing its locks.
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = " ".join(
        [
            f"-c lock_timeout={env.int('DATABASE_LOCK_TIMEOUT_MS', default=5000)}",
            f"-c statement_timeout={env.int('DATABASE_STATEMENT_TIMEOUT_MS', default=30000)}",
            "-c idle_in_transaction_session_timeout="
            f"{env.int('DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS', default=60000)}",
        ]
    )
    DATABASE_POOL_MAX_SIZE = env.int("DATABASE_POOL_MAX_SIZE", default=10)  # per process; 0: no pool
    if DATABASE_POOL_MAX_SIZE > 0:
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": 1,
            "max_size": DATABASE_POOL_MAX_SIZE,
            # How long a request or job waits for a free connection before it fails (a 500 / a retried job).
            "timeout": env.float("DATABASE_POOL_TIMEOUT", default=10.0),
        }
        DATABASES["default"]["CONN_MAX_AGE"] = 0  # Django refuses persistent connections with a pool
        # CONN_HEALTH_CHECKS stays on: the pool then checks a connection when it lends it.

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: RQ and the Channels layer share one server --------------------------------------------------
REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:6379/0")

RQ_QUEUES = {
    "payments": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 60},
    # Receipts and refund notices (checkout/outbox.py): taken by a few threads of each worker process, after the
    # payments queue, so a slow mail server can hold EMAIL_WORKER_THREADS threads per process and never more.
    "emails": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 60},
    # Merchant webhooks (webhooks/delivery.py): WEBHOOK_WORKER_THREADS threads of each worker process, others than
    # the email threads, so a slow merchant server holds those and never a payment's thread.
    "webhooks": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 60},
}
RQ = {
    # Our services enqueue from transaction.on_commit themselves; django-rq's own deferral would
    # otherwise swallow the enqueue whenever the caller is still inside an atomic block.
    "COMMIT_MODE": "auto",
}

# Shared by every web process: API throttling counts a client's requests across all of them.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "checkout",
        "OPTIONS": {
            "socket_connect_timeout": 1,
            "socket_timeout": 1,
            # Not a pool per request (Django's default under ASGI): one per process.
            "pool_class": "infrastructure.redis_pools.SharedConnectionPool",
        },
    }
}

CHANNEL_LAYERS = {
    "default": {
        # channels-redis's layer, with a fix for the push it loses when another consumer disconnects.
        "BACKEND": "infrastructure.overrides.channels_redis.CancelSafeRedisChannelLayer",
        # No socket timeout: the layer's reads block while a socket waits for a push, and redis-py 8's 5 s
        # default would break every WebSocket and long-poll that waits longer than that.
        "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": None}], "capacity": 1000, "expiry": 30},
    },
}

# --- Payments -------------------------------------------------------------------------------------------
PAYMENTS_GATEWAY = env("PAYMENTS_GATEWAY", default="payments.sandbox.gateway.SandboxGateway")
# Simulated bank latency; the "please wait" page exists because this is never zero in real life.
SANDBOX_LATENCY_MS = env.int("SANDBOX_LATENCY_MS", default=1000)
SANDBOX_LATENCY_JITTER_MS = env.int("SANDBOX_LATENCY_JITTER_MS", default=250)
SANDBOX_SLOW_CARD_MS = env.int("SANDBOX_SLOW_CARD_MS", default=5000)
SANDBOX_OPENING_BALANCE = env.int("SANDBOX_OPENING_BALANCE", default=5_000_000)
SANDBOX_FAULTS_FILE = env("SANDBOX_FAULTS_FILE", default="")
# The merchant's name the sandbox bank's 3-D Secure challenge page shows.
SANDBOX_MERCHANT_NAME = env(
    "SANDBOX_MERCHANT_NAME", default="Roastery"
)  # make chaos: "unavailable"/"timeout" (test-cards.md)
# Keys the card fingerprint (an HMAC of the number). Its own secret, required in production: with it, a
# database dump alone cannot be brute-forced back to card numbers, and rotating the secret key (sessions,
# tokens) does not change every card's fingerprint. Keep it stable: changing it makes every card look new
# to the velocity checks and the block list.
CARD_FINGERPRINT_KEY = _required_in_production(
    "CARD_FINGERPRINT_KEY", lambda: _development_secret("CARD_FINGERPRINT_KEY")
)
if CARD_FINGERPRINT_KEY == SECRET_KEY:
    raise ImproperlyConfigured("CARD_FINGERPRINT_KEY must be a secret of its own, not DJANGO_SECRET_KEY.")
if not DEBUG and len(CARD_FINGERPRINT_KEY) < 32:
    raise ImproperlyConfigured("CARD_FINGERPRINT_KEY must be at least 32 characters long.")

# Explicit, never RQ's 180 s default by accident: the gateway call with its retries, and margin.
PAYMENTS_JOB_TIMEOUT = env.int("PAYMENTS_JOB_TIMEOUT", default=60)
# Jobs in flight per worker process (`manage.py payments_worker`, one RQ worker per thread). A job mostly
# waits for the bank, so by Little's law settled/s ≈ threads × processes ÷ bank latency: make run's 2
# processes × 64 keep 128 bank calls in flight, 64 payments/s at 2 s (make bench, scenario 7).
PAYMENTS_WORKER_THREADS = env.int("PAYMENTS_WORKER_THREADS", default=64)
# Transient gateway errors (the call never reached the bank) are retried in the job: up to this many
# retries, waiting base·2^n seconds (capped, with jitter) between them.
PAYMENTS_GATEWAY_RETRIES = env.int("PAYMENTS_GATEWAY_RETRIES", default=3)
PAYMENTS_GATEWAY_BACKOFF_BASE = env.float("PAYMENTS_GATEWAY_BACKOFF_BASE", default=0.2)
PAYMENTS_GATEWAY_BACKOFF_CAP = env.float("PAYMENTS_GATEWAY_BACKOFF_CAP", default=2.0)
# Recovery (see docs/architecture.md, "No payment is ever lost"): how long a pending payment may wait for a
# worker before its job is presumed lost and re-driven; how long a worker may hold a payment in
# processing before it is presumed dead (longer than the job timeout, so a live job is never overtaken);
# and how often an unknown payment's outcome is asked for again.
PAYMENTS_PENDING_GRACE = env.int("PAYMENTS_PENDING_GRACE", default=30)
PAYMENTS_PROCESSING_LEASE = env.int("PAYMENTS_PROCESSING_LEASE", default=PAYMENTS_JOB_TIMEOUT + 30)
PAYMENTS_SETTLE_RETRY = env.int("PAYMENTS_SETTLE_RETRY", default=10)
PAYMENTS_RECONCILE_INTERVAL = env.float("PAYMENTS_RECONCILE_INTERVAL", default=5)
# 3-D Secure (docs/architecture.md, "When the bank asks the cardholder"): how long a payment waits in
# requires_action for the shopper to authenticate before the reconciler fails it (authentication_expired).
PAYMENTS_ACTION_TIMEOUT = env.int("PAYMENTS_ACTION_TIMEOUT", default=15 * 60)
# Where the bank sends a shop's shopper back after the challenge: the wait page. A path ({payment_id} filled in):
# payments does not import the shop, and the sandbox bank accepts same-origin paths only (no open redirect).
PAYMENTS_ACTION_RETURN_PATH = env("PAYMENTS_ACTION_RETURN_PATH", default="/payments/{payment_id}/wait")
# The secret the gateway signs its callbacks with (HMAC-SHA256); whoever holds it can tell us "the cardholder has
# answered". A real provider hands out one per endpoint: set it then. By default (the sandbox bank, which runs in
# our processes) it is derived from the secret key, under a name of its own, so it is never the key itself.
PAYMENTS_GATEWAY_CALLBACK_SECRET = (
    env("PAYMENTS_GATEWAY_CALLBACK_SECRET", default="")
    or hmac.new(SECRET_KEY.encode(), b"payments.gateway-callback", hashlib.sha256).hexdigest()
)
# A callback signed longer ago than this is refused (a captured one cannot be replayed later).
PAYMENTS_GATEWAY_CALLBACK_TOLERANCE = env.int("PAYMENTS_GATEWAY_CALLBACK_TOLERANCE", default=300)
# Seconds between two reads of an open staff dashboard's figures when nothing changes (the queue, the workers);
# a payment's or refund's change reads them sooner (payments/dashboard_live.py).
PAYMENTS_DASHBOARD_REFRESH = env.float("PAYMENTS_DASHBOARD_REFRESH", default=5)

# Risk checks, run before the bank is asked. Amount limits are in minor units per currency; a currency not
# listed is limited to 5,000 major units.
RISK_AMOUNT_LIMITS = {"USD": 500_000, "EUR": 500_000, "GBP": 400_000, "JPY": 750_000}
RISK_VELOCITY_MAX = env.int("RISK_VELOCITY_MAX", default=10)
RISK_VELOCITY_WINDOW = env.int("RISK_VELOCITY_WINDOW", default=600)
# Sandbox test cards that the block list treats as known fraud (docs/test-cards.md).
RISK_BLOCKED_TEST_CARDS = env.list("RISK_BLOCKED_TEST_CARDS", default=["4100000000000019"])
# How long the WebSocket token in a status document stays valid.
PAYMENTS_WS_TOKEN_TTL = env.int("PAYMENTS_WS_TOKEN_TTL", default=24 * 3600)
# What the status URL suggests in Retry-After while a payment is not final.
PAYMENTS_POLL_INTERVAL = env.int("PAYMENTS_POLL_INTERVAL", default=2)
# ... and while it waits for the shopper at their bank (requires_action): a human takes tens of seconds there.
PAYMENTS_ACTION_POLL_INTERVAL = env.int("PAYMENTS_ACTION_POLL_INTERVAL", default=5)
# The shop's one currency (a cart never mixes two). Any case in the environment; refused at start-up unless it is
# one we take, rather than found out by the first checkout.
SHOP_CURRENCY = env("SHOP_CURRENCY", default="USD").strip().upper()
if SHOP_CURRENCY not in SUPPORTED_CURRENCIES:
    raise ImproperlyConfigured(f"SHOP_CURRENCY={SHOP_CURRENCY!r} is not one of {', '.join(SUPPORTED_CURRENCIES)}.")

# --- Email to shoppers: receipts and refund notices (checkout/receipts.py, checkout/outbox.py) ----------------
# `make run` (DEBUG) writes every email as a file under var/mail/ (EMAIL_FILE_PATH); production sends by SMTP.
EMAIL_BACKEND = env(
    "EMAIL_BACKEND",
    default="django.core.mail.backends.filebased.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_FILE_PATH = env("EMAIL_FILE_PATH", default=str(VAR_DIR / "mail"))
EMAIL_HOST = env("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=587)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", default="")
# STARTTLS on 587 by default; EMAIL_USE_SSL=true (implicit TLS, port 465) instead. Never both: Django refuses it.
EMAIL_USE_SSL = env.bool("EMAIL_USE_SSL", default=False)
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=not EMAIL_USE_SSL)
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured("EMAIL_USE_TLS and EMAIL_USE_SSL are exclusive: set one of them.")
# Seconds any one SMTP operation may wait: Django's default is none, and a stalled mail server would hold a worker
# thread for good.
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Roastery <orders@localhost>")
SERVER_EMAIL = env("SERVER_EMAIL", default=DEFAULT_FROM_EMAIL)
# Where the links in an email point (the order page): the shop's public origin. `manage.py check --deploy` says
# when it is missing with DEBUG off (checkout/checks.py); `make run` serves on localhost:PORT.
SHOP_BASE_URL = env("SHOP_BASE_URL", default=f"http://localhost:{os.environ.get('PORT', '8000')}" if DEBUG else "")
SHOP_NAME = env("SHOP_NAME", default="Roastery")
# Tries of one email before it is marked failed (none of them reached the mail server); the reconciler queues the
# next try EMAIL_RETRY_BASE·2^n seconds after a failure.
EMAIL_SEND_ATTEMPTS = env.int("EMAIL_SEND_ATTEMPTS", default=5)
EMAIL_RETRY_BASE = env.int("EMAIL_RETRY_BASE", default=30)
# How long a queued email waits for its job before the reconciler presumes the job lost and queues it again.
EMAIL_JOB_GRACE = env.int("EMAIL_JOB_GRACE", default=60)
# Threads of each worker process that also take email jobs (after payment jobs): the most a slow mail server holds.
EMAIL_WORKER_THREADS = env.int("EMAIL_WORKER_THREADS", default=2)

# --- Merchant webhooks (docs/webhooks.md) -----------------------------------------------------------------
# Endpoint URLs may be http and may resolve to private, loopback or link-local addresses: `make run` and the tests
# (a receiver on 127.0.0.1) only. Off in production, where it would let an API client aim our servers at our own
# network (server-side request forgery).
WEBHOOKS_ALLOW_PRIVATE_URLS = env.bool("WEBHOOKS_ALLOW_PRIVATE_URLS", default=DEBUG)
# Seconds each step of one delivery may take (connect, send, each read): a receiver that does not answer in time
# is a failed attempt.
WEBHOOK_TIMEOUT = env.float("WEBHOOK_TIMEOUT", default=10.0)
# Seconds between a failed attempt and the next (each ±WEBHOOK_RETRY_JITTER): 10 attempts over about 24 h, then the
# delivery is failed. The table is in docs/webhooks.md.
WEBHOOK_RETRY_SCHEDULE = env.list(
    "WEBHOOK_RETRY_SCHEDULE", cast=float, default=[30, 120, 600, 1800, 3600, 7200, 14400, 28800, 28800]
)
WEBHOOK_RETRY_JITTER = env.float("WEBHOOK_RETRY_JITTER", default=0.2)
# How long a delivery waits for its job before the reconciler presumes the job lost and queues it again.
WEBHOOK_JOB_GRACE = env.int("WEBHOOK_JOB_GRACE", default=60)
# A delivery whose endpoint is busy with another (one at a time per endpoint) is tried again this much later.
WEBHOOK_BUSY_DELAY = env.float("WEBHOOK_BUSY_DELAY", default=2.0)
# After a secret rotation, the old secret keeps signing (a second v1=) this many seconds.
WEBHOOK_SECRET_GRACE = env.int("WEBHOOK_SECRET_GRACE", default=24 * 3600)
# Threads of each worker process that take the webhooks queue (after payments): the most slow receivers hold.
WEBHOOK_WORKER_THREADS = env.int("WEBHOOK_WORKER_THREADS", default=4)

# --- Auth, i18n, static ---------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "admin:login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

REST_FRAMEWORK = {
    # Token first: its WWW-Authenticate header is what makes an anonymous request a 401 (not a 403).
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # DRF's token authentication, with failed attempts throttled per client address.
        "payments.api.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # DRF's JSON parser, refusing bodies nested too deeply (a 400, not a RecursionError's 500).
    "DEFAULT_PARSER_CLASSES": ["payments.api.parsers.JSONParser"],
    # DRF's negotiation, answering an unknown ?format= with 406 (what it is) rather than 404.
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "payments.api.negotiation.ContentNegotiation",
    "DEFAULT_THROTTLE_CLASSES": ["payments.api.throttling.ClientRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "client": env("API_THROTTLE_RATE", default="600/min"),
        # Wrong tokens per client address; past it every token from there is a 429 until the window ends.
        "auth_failure": env("API_AUTH_FAILURE_RATE", default="10/min"),
    },
    # How many proxies of ours append to X-Forwarded-For in front of daphne. 0: the header is ignored and a
    # client is its TCP peer's address (anyone can write an X-Forwarded-For; rotating it must not make a
    # client someone new to the throttles).
    "NUM_PROXIES": env.int("TRUSTED_PROXY_COUNT", default=0),
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "infrastructure.problems.problem_exception_handler",
    # Escape non-ASCII in JSON: an echoed lone surrogate must not break the response.
    "UNICODE_JSON": False,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Payments API",
    "DESCRIPTION": (
        "Asynchronous card payments: POST a payment, get **202 Accepted** and a status URL, then follow it by "
        "polling, long-polling (`?wait=N`) or the WebSocket link. Errors are RFC 9457 `application/problem+json`."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "payments.api.docs.problem_responses_hook",
        "webhooks.api.openapi_links_hook",
    ],
    "ENUM_NAME_OVERRIDES": {
        "PaymentStatusEnum": "payments.models.PaymentStatus",
        "RefundStatusEnum": "payments.models.RefundStatus",
    },
}

# Idempotency keys are kept at least this long (the API documents it), then purged by the reconciler.
IDEMPOTENCY_KEY_TTL = env.int("IDEMPOTENCY_KEY_TTL", default=24 * 3600)
# How long a first request may hold its key before a retry may take it over (it died without committing).

# Load shedding: with more jobs than this waiting, POST /api/v1/payments answers 503 before creating anything.
PAYMENTS_MAX_BACKLOG = env.int("PAYMENTS_MAX_BACKLOG", default=5000)
# The longest ?wait= a status request may ask for.
PAYMENTS_MAX_LONG_POLL = 30

# --- Health and metrics (payments/monitoring.py; docs/operations.md, "Health checks" and "Metrics") --------------
# Answered by infrastructure.middleware.ProbeMiddleware ahead of host validation and the HTTPS redirect.
PROBE_PATHS = ["/healthz", "/readyz"]
# Seconds /readyz waits for its checks (run at once, each on a thread) before it names the late ones and answers 503.
READINESS_TIMEOUT = env.float("READINESS_TIMEOUT", default=2.0)
# Lets a scraper read /metrics with `Authorization: Bearer <token>` (a staff session can too). Unset: staff only.
# Processes that share PROMETHEUS_MULTIPROC_DIR (prometheus-client reads it itself) are added up on /metrics.
METRICS_TOKEN = env("METRICS_TOKEN", default="")
if METRICS_TOKEN and not DEBUG and len(METRICS_TOKEN) < 32:
    raise ImproperlyConfigured("METRICS_TOKEN must be at least 32 characters long.")

# --- Security: production defaults, relaxed only by DEBUG -----------------------------------------------
SESSION_COOKIE_SECURE = not DEBUG
SESSION_ENGINE = "infrastructure.sessions"  # database sessions; a save the database refuses is a 503 (see there)
CSRF_COOKIE_SECURE = not DEBUG
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=0 if DEBUG else 60 * 60 * 24 * 365)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# Behind a TLS-terminating proxy, trust its X-Forwarded-Proto only when told to.
if env.bool("DJANGO_BEHIND_TLS_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- Content-Security-Policy (django-csp) and caching: see docs/security-headers.md -----------------------
# Scripts and styles are files we serve: no inline script, style attribute or eval, nothing from another origin,
# no framing, forms post only to us. The one page that needs an inline block (the API docs' Swagger UI) marks it
# with a nonce; NONCE adds one to the header of a response that used it, and nothing to any other response.
# Pages that show a form token or a payment are never stored by a cache (checkout.views, never_cache).


def _websocket_sources(hosts: list[str], *, secure_only: bool) -> list[str]:
    """The ws:/wss: origins of our own hosts. 'self' covers them in current browsers (CSP 3); listed for those
    that predate it. A wildcard host lists nothing: 'self' then stands alone."""
    sources = []
    for host in hosts:
        if host == "*" or "*" in host:
            continue
        names = [host.lstrip("."), f"*{host}"] if host.startswith(".") else [host]
        for scheme in ("wss",) if secure_only else ("wss", "ws"):
            sources += [f"{scheme}://{name}:*" for name in names]
    return sources


CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [CSP_SELF],
        "script-src": [CSP_SELF, CSP_NONCE],
        "style-src": [CSP_SELF],
        "connect-src": [CSP_SELF, *_websocket_sources(ALLOWED_HOSTS, secure_only=not DEBUG)],
        "object-src": [CSP_NONE],
        "base-uri": [CSP_NONE],
        "form-action": [CSP_SELF],
        "frame-ancestors": [CSP_NONE],
    },
}

# --- Logging: the card number and CVC are never logged; request bodies are not logged at all ------------
# Error pages (DEBUG's included), error e-mails and tracebacks hide card fields by name and by content.
DEFAULT_EXCEPTION_REPORTER = "infrastructure.redaction.CardDataExceptionReporter"
DEFAULT_EXCEPTION_REPORTER_FILTER = "infrastructure.redaction.CardDataReporterFilter"
# One line per event, with the request, payment and job ids it belongs to (docs/operations.md, "Logs"): JSON, for
# machines, unless DJANGO_DEBUG is on (make run), where the same lines are readable text.
LOG_FORMAT = env("LOG_FORMAT", default="console" if DEBUG else "json")
if LOG_FORMAT not in ("json", "console"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be json or console, not {LOG_FORMAT!r}.")
# Configures structlog, then applies LOGGING (infrastructure/logs.py).
LOGGING_CONFIG = "infrastructure.logs.logging_configure"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        # Scrubs card numbers and card field values from every line, a traceback's included.
        "structured": {"()": "infrastructure.logs.formatter", "log_format": LOG_FORMAT},
    },
    "filters": {
        "require_debug_false": {"()": "django.utils.log.RequireDebugFalse"},
        "permission_denied_without_traceback": {"()": "infrastructure.redaction.PermissionDeniedWithoutTraceback"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "structured",
            "filters": ["permission_denied_without_traceback"],
        },
        "mail_admins": {
            "level": "ERROR",
            "filters": ["require_debug_false"],
            "class": "django.utils.log.AdminEmailHandler",
        },
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {
        # Named here so that Django's own handlers for it (a console one, unformatted, and so unscrubbed, under
        # DEBUG) are replaced: its records reach the console through the root's handler, and e-mail (to
        # ADMINS, when set) through the exception reporter that hides card data.
        "django": {"handlers": ["mail_admins"], "level": "INFO"},
        "django.db.backends": {"level": "WARNING"},
        "rq.worker": {"level": env("RQ_LOG_LEVEL", default="INFO")},
    },
}
