"""Code that the apps and config/ share and that is not business logic: the plumbing under the checkout.

config/ wires things together (settings, URLs, the ASGI and WSGI entry points) and names what lives here by
dotted path; the apps (checkout, payments, bench) import it. This package imports nothing from the apps: it is
the lower layer (tests/test_architecture.py checks it, docs/architecture.md, "Layers").

- problems: RFC 9457 problem responses, the API's error format, and DRF's exception handler
- errors: the 400/404/500 handlers (problem+json under /api/, pages elsewhere)
- middleware, sessions: a busy database answers 503 with Retry-After wherever in a request it shows
- redaction: card data never in an error page, an error e-mail, a log line or the access log
- redis_pools: one Redis connection pool per process for Django's cache
- embedded_redis, processes: the embedded Valkey for development, and child processes that die with their
  supervisor (runstack, the bench and the test stacks)
"""
