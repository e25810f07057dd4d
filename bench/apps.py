from django.apps import AppConfig


class BenchConfig(AppConfig):
    """Bench-only endpoints; installed only when BENCH_ENDPOINTS is on (config/settings.py)."""

    name = "bench"
    verbose_name = "Benchmark endpoints (never in the product)"
