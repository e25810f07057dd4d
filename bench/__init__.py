"""`make bench`: the benchmark harness (python -m bench.run) and its bench-only Django app.

Two things live here:

- the harness: stack.py starts daphne, RQ workers, Redis and a bench database on 127.0.0.1; load.py and
  ws_load.py are the HTTP and WebSocket load clients (each run in its own process); scenarios.py,
  scenario_e2e.py and scenario_scale.py measure the scenarios side by side; profiling.py profiles the hot
  paths in-process; report.py writes docs/benchmarks.md with its chart (record.py: what every report is made
  of, tests/chaos/'s too); run.py is the entry point.
- the bench-only app (apps.py, views.py, jobs.py, consumers.py): the reference endpoints, job and socket the
  ratios are measured against. They run only under the bench's own settings (settings.py: the product's plus
  this app, with urls.py and asgi.py, the product's URLs and sockets plus these), which the harness gives the
  processes it starts (DJANGO_SETTINGS_MODULE=bench.settings); the product's config/ never names them.

`make chaos` is not here: it passes or fails and CI runs it, so it is a test (tests/chaos/, python -m
tests.chaos). It builds on stack.py, load.py, ws_load.py and record.py; nothing here imports it.

Nothing here imports Django at import time, so `python -m bench.load` stays a lean client.
"""
