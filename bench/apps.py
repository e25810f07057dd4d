from django.apps import AppConfig


class BenchConfig(AppConfig):
    """Bench-only endpoints; installed only by the bench's own settings (bench/settings.py)."""

    name = "bench"
    verbose_name = "Benchmark endpoints (never in the product)"
