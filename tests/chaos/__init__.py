"""`make chaos`: the real stack under load while things break on purpose, then every loss counted.

python -m tests.chaos [--ci]

A test, not a benchmark: it passes or fails (exit 1 when any loss counter is not zero) and CI runs it
(`make chaos CHAOS_ARGS=--ci`), so it lives with the tests. It builds on bench/'s stack, load clients and record
(bench/stack.py, ws_load.py, load.py, record.py); nothing in the product or bench/ imports it. Its modules are
not named test_*.py, so pytest collects only test_chaos.py here, the harness's own cheap tests.

- plan.py      what a run does: the load's size and mix, the shortened timers, the fault schedule;
- stack.py     the processes (bench/stack.py's Stack, plus a Valkey the harness owns and restarts, the
               reconciler, and a supervisor that restarts what dies, as runstack would);
- faults.py    the injectors: SIGKILL/SIGSTOP of workers, Redis restarted empty and paused, PostgreSQL
               connections killed and a table locked, daphne restarted, the sandbox bank failing in bursts;
- clients.py   the clients, through the public surfaces only: API merchants (Idempotency-Key retries,
               refunds), browser-like shoppers (cart, checkout form), WebSocket waiters; and their log;
- counters.py  what is counted afterwards, from the database, the bank's ledger and the client log;
- search.py    every card number and CVC used, searched in pg_dump, Redis and every log line;
- recovery.py  how long after each fault the system settled payments at its pre-fault rate again;
- report.py    bench/results/<stamp>-chaos[-ci].json and docs/reliability.md;
- run.py       the run, start to finish; every process it starts is stopped, on error and Ctrl-C too.
"""
