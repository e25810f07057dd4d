"""`make bench`: the benchmark harness (python -m bench.run) and its bench-only Django app.

Two things live here:

- the harness: stack.py starts daphne, RQ workers, Redis and a bench database on 127.0.0.1; load.py is the
  asyncio/httpx load generator (run in its own process); scenarios.py measures the issue's scenarios side by
  side; profiling.py profiles the hot paths in-process; report.py writes bench/results/*.json and
  docs/benchmarks.md with its chart; run.py is the entry point.
- the bench-only app (apps.py, views.py, jobs.py, consumers.py): the reference endpoints, job and socket the
  ratios are measured against. They run only under the bench's own settings (settings.py: the product's plus
  this app, with urls.py and asgi.py, the product's URLs and sockets plus these), which the harness gives the
  processes it starts (DJANGO_SETTINGS_MODULE=bench.settings); the product's config/ never names them.

Nothing here imports Django at import time, so `python -m bench.load` stays a lean client.
"""
