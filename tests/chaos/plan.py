"""What a chaos run does: its size, its client mix, the stack's shortened timers and the fault schedule.

Two profiles. `FULL` (what writes docs/reliability.md): 5,000 payments with the bank at 200–1000 ms and every
fault, several of them more than once, the database stall held 75 s. `CI` (`--ci`): a few hundred payments,
every fault once, the stall shortened (and the database's own timers with it, so the stall is still longer
than every timer), under 5 minutes on a 2-core machine.

The timers are shortened through the environment (config/settings.py reads them) so that recovery takes
seconds, not minutes; their order is kept: job timeout < processing lease, and the stall and the worker's
SIGSTOP outlast the lease.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# --- the faults -------------------------------------------------------------------------------------------
WORKER_SIGKILL = "worker-sigkill"
WORKER_SIGSTOP = "worker-sigstop"
REDIS_RESTART = "redis-restart"
REDIS_PAUSE = "redis-pause"
PG_TERMINATE = "pg-terminate"
DB_STALL = "db-stall"
DAPHNE_RESTART = "daphne-restart"
BANK_UNAVAILABLE = "bank-unavailable"
BANK_TIMEOUT = "bank-timeout"
FAULT_KINDS = (
    WORKER_SIGKILL,
    WORKER_SIGSTOP,
    REDIS_RESTART,
    REDIS_PAUSE,
    PG_TERMINATE,
    DB_STALL,
    DAPHNE_RESTART,
    BANK_UNAVAILABLE,
    BANK_TIMEOUT,
)
# The table the stall locks, and how: SHARE ROW EXCLUSIVE conflicts with every INSERT/UPDATE/DELETE and with
# SELECT ... FOR UPDATE, but not with plain reads. So every write path that moves money stops at once (the
# accept path's INSERT, a worker's tx 1 and tx 2, the reconciler, refunds, which lock the payment row) while
# pages, the status URL and the WebSocket still read: the worst case for the fences (a worker that charged
# at the bank cannot record it), not a dead database (which pg-terminate and a Redis-like outage already cover).
STALL_TABLE = "payments_payment"
STALL_MODE = "SHARE ROW EXCLUSIVE"


# A daphne restart's longest: 5 s for the old process to stop (then SIGKILL, faults.py) and ~2 s to start.
DAPHNE_RESTART_BOUND = 8.0


@dataclass(frozen=True)
class Fault:
    at: float  # seconds after the load starts
    kind: str
    duration: float = 0.0  # how long it is held; 0 for a one-off (a kill, a restart)
    count: int = 1  # worker-sigkill: processes killed at once

    @property
    def target(self) -> str:
        return {
            WORKER_SIGKILL: "a random worker process" if self.count == 1 else f"{self.count} random worker processes",
            WORKER_SIGSTOP: f"a random worker process, stopped {self.duration:g} s (past its lease), then SIGCONT",
            REDIS_RESTART: f"the Valkey server: stopped, a new empty one on the same port after {self.duration:g} s",
            REDIS_PAUSE: f"the Valkey server: SIGSTOP for {self.duration:g} s, then SIGCONT",
            PG_TERMINATE: "every PostgreSQL backend of the app (pg_terminate_backend)",
            DB_STALL: f"LOCK TABLE {STALL_TABLE} IN {STALL_MODE} MODE held {self.duration:g} s",
            DAPHNE_RESTART: "daphne (SIGTERM with sockets open), a new one on the same port",
            BANK_UNAVAILABLE: f"the sandbox bank: every call GatewayUnavailable for {self.duration:g} s",
            BANK_TIMEOUT: f"the sandbox bank: every call acts, then GatewayTimeout, for {self.duration:g} s",
        }[self.kind]

    @property
    def ends_at(self) -> float:
        """When the fault is over at the latest: a daphne restart takes up to its SIGTERM grace and a start."""
        return self.at + (DAPHNE_RESTART_BOUND if self.kind == DAPHNE_RESTART else self.duration)


# --- the cards ---------------------------------------------------------------------------------------------
# (label, number, weight, expected): the label is what the client log and the results keep, never the number.
# expected: "succeed", or the decline code the payment must fail with ("fraudulent": our own risk check).
CARDS = (
    ("visa", "4242424242424242", 28, "succeed"),
    ("mastercard", "5555555555554444", 10, "succeed"),
    ("amex", "378282246310005", 6, "succeed"),
    ("declined", "4000000000000002", 6, "card_declined"),
    ("insufficient-funds", "4000000000009995", 4, "insufficient_funds"),
    ("expired", "4000000000000069", 2, "expired_card"),
    ("incorrect-cvc", "4000000000000127", 2, "incorrect_cvc"),
    ("lost", "4000000000009987", 1, "lost_card"),
    ("stolen", "4000000000009979", 1, "stolen_card"),
    ("fraud", "4100000000000019", 4, "fraudulent"),
    ("transient", "4000000000000416", 10, "succeed"),
    ("answer-lost", "4000000000000424", 8, "succeed"),
    ("slow", "4000000000000440", 5, "succeed"),
)
CARD_NUMBER = {label: number for label, number, _, _ in CARDS}
CARD_EXPECTED = {label: expected for label, _, _, expected in CARDS}


def is_amex(label: str) -> bool:
    return CARD_NUMBER[label].startswith(("34", "37"))


# --- the profiles ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Profile:
    name: str
    payments: int
    rate: float  # payments started per second (the arrival schedule; clients fall behind during faults)
    concurrency: int  # client tasks submitting at once
    api_share: float  # the rest pay through the checkout form
    ws_share: float  # payments a WebSocket waiter follows
    refund_share: float  # API payments the merchant follows to their outcome and, if paid, refunds
    client_timeout: float  # seconds a client waits for an answer before it retries
    give_up_after: float  # seconds a client keeps retrying one request
    worker_processes: int
    worker_threads: int
    recovery_window: float  # the sliding window of settled/s (recovery.py)
    faults: tuple[Fault, ...]
    env: dict[str, str] = field(default_factory=dict)

    @property
    def timers(self) -> dict[str, float]:
        return {name: float(self.env[name]) for name in TIMER_NAMES}

    @property
    def settle_window(self) -> float:
        """How long after the last fault (and the last submission) everything must be final: the reconciler's
        worst path (a lost job: grace; a dead worker: lease, then a settle retry), a job's run, and margin."""
        t = self.timers
        return (
            t["PAYMENTS_PENDING_GRACE"]
            + t["PAYMENTS_PROCESSING_LEASE"]
            + t["PAYMENTS_SETTLE_RETRY"]
            + t["PAYMENTS_JOB_TIMEOUT"]
            + 4 * t["PAYMENTS_RECONCILE_INTERVAL"]
            + 10
        )

    @property
    def schedule_end(self) -> float:
        return max(fault.ends_at for fault in self.faults)


TIMER_NAMES = (
    "PAYMENTS_JOB_TIMEOUT",
    "PAYMENTS_PROCESSING_LEASE",
    "PAYMENTS_PENDING_GRACE",
    "PAYMENTS_SETTLE_RETRY",
    "PAYMENTS_RECONCILE_INTERVAL",
)

# The environment of every process of the stack, on top of bench/stack.py's BENCH_ENV (DEBUG off, limits
# raised so that the load measures the code, not a guard rail). The settings are the product's (ChaosStack).
COMMON_ENV = {
    "LOG_LEVEL": "INFO",  # every line the processes would log in production is searched for card data
    "RQ_LOG_LEVEL": "INFO",
    "RISK_VELOCITY_MAX": "1000000000",
    "API_THROTTLE_RATE": "100000000/min",
}

FULL = Profile(
    name="full",
    payments=5000,
    rate=8.5,
    concurrency=48,
    api_share=0.75,
    ws_share=0.26,
    refund_share=0.3,
    client_timeout=10.0,
    give_up_after=300.0,
    worker_processes=2,
    worker_threads=16,
    recovery_window=10.0,
    faults=(
        Fault(45, WORKER_SIGKILL),
        Fault(70, BANK_UNAVAILABLE, duration=5),
        Fault(80, BANK_UNAVAILABLE, duration=5),
        Fault(110, WORKER_SIGSTOP, duration=40),
        Fault(175, REDIS_RESTART, duration=2),
        Fault(205, WORKER_SIGKILL),
        Fault(230, REDIS_PAUSE, duration=20),
        # Right after the pause, while the payments it held up are settling and their waiters' sockets are open
        # (a healthy stack at this load has only a few open at any moment: 2 in one run, 66 in a sick one).
        Fault(251, DAPHNE_RESTART),
        Fault(280, PG_TERMINATE),
        Fault(305, BANK_TIMEOUT, duration=5),
        Fault(315, BANK_TIMEOUT, duration=5),
        Fault(375, DB_STALL, duration=75),
        Fault(480, WORKER_SIGKILL, count=2),
        Fault(505, BANK_UNAVAILABLE, duration=4),
        Fault(513, BANK_TIMEOUT, duration=4),
        Fault(540, REDIS_RESTART, duration=2),
        Fault(560, WORKER_SIGKILL),
    ),
    env={
        "SANDBOX_LATENCY_MS": "600",  # 200–1000 ms a call
        "SANDBOX_LATENCY_JITTER_MS": "400",
        "SANDBOX_SLOW_CARD_MS": "3000",
        "PAYMENTS_JOB_TIMEOUT": "20",
        "PAYMENTS_PROCESSING_LEASE": "30",
        "PAYMENTS_PENDING_GRACE": "10",
        "PAYMENTS_SETTLE_RETRY": "5",
        "PAYMENTS_RECONCILE_INTERVAL": "1",
        # The database's own timers keep their defaults (lock 5 s, statement 30 s, idle in a transaction 60 s):
        # the 75 s stall outlasts every one of them.
    },
)

CI = Profile(
    name="ci",
    payments=360,
    rate=3.0,
    concurrency=32,
    api_share=0.7,
    ws_share=0.4,
    refund_share=0.35,
    client_timeout=8.0,
    give_up_after=90.0,
    worker_processes=2,
    worker_threads=8,
    recovery_window=5.0,
    faults=(
        Fault(12, WORKER_SIGKILL),
        Fault(20, BANK_UNAVAILABLE, duration=4),
        Fault(30, WORKER_SIGSTOP, duration=12),
        Fault(47, REDIS_RESTART, duration=1),
        Fault(56, REDIS_PAUSE, duration=6),
        Fault(63, DAPHNE_RESTART),  # as in the full run: with the pause's waiters still open
        Fault(72, PG_TERMINATE),
        Fault(78, BANK_TIMEOUT, duration=4),
        Fault(96, DB_STALL, duration=16),
    ),
    env={
        "SANDBOX_LATENCY_MS": "150",
        "SANDBOX_LATENCY_JITTER_MS": "100",
        "SANDBOX_SLOW_CARD_MS": "1500",
        "PAYMENTS_JOB_TIMEOUT": "6",
        "PAYMENTS_PROCESSING_LEASE": "8",
        "PAYMENTS_PENDING_GRACE": "4",
        "PAYMENTS_SETTLE_RETRY": "2",
        "PAYMENTS_RECONCILE_INTERVAL": "1",
        # Shortened with the stall (16 s) so that it still outlasts every timer: lock 5 s, statement 8 s,
        # idle in a transaction 12 s, the lease 8 s.
        "DATABASE_STATEMENT_TIMEOUT_MS": "8000",
        "DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS": "12000",
    },
)

PROFILES = {"full": FULL, "ci": CI}


def stack_env(profile: Profile, *, faults_file: str) -> dict[str, str]:
    return {
        **COMMON_ENV,
        **profile.env,
        "PAYMENTS_WORKER_THREADS": str(profile.worker_threads),
        "SANDBOX_FAULTS_FILE": faults_file,
    }
