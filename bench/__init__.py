"""`make bench`: the benchmark harness (python -m bench.run) and its bench-only Django app.

Two things live here:

- the harness: stack.py starts daphne, RQ workers, Redis and a bench database on 127.0.0.1; load.py is the
  asyncio/httpx load generator (run in its own process); scenarios.py measures the issue's scenarios side by
  side; profiling.py profiles the hot paths in-process; report.py writes bench/results/*.json and
  docs/benchmarks.md with its chart; run.py is the entry point.
- the bench-only app (apps.py, views.py, urls.py, jobs.py): the reference endpoints and job the ratios are
  measured against. It is installed and routed only when BENCH_ENDPOINTS is on (config/settings.py,
  config/urls.py), which the harness sets for the processes it starts, never in the product.

Nothing here imports Django at import time, so `python -m bench.load` stays a lean client.
"""
