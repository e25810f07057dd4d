"""The shape docs/architecture.md draws ("Layers"), checked from the source: config/ wires, the apps sit on
infrastructure/, and nothing imports upwards: a lower app never imports a higher one, no app imports config/
(bench's own settings, URLconf and ASGI application build on theirs), config/ never names bench,
infrastructure/ imports neither the apps nor config/, and nothing of the product or the bench imports the tests
(tests/chaos/, `make chaos`'s harness, drives the product from above)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APPS = ("checkout", "payments", "webhooks", "bench")


def imports(package: str) -> dict[str, set[tuple[str, str]]]:
    """Every (module, name) each file of `package` imports, at any depth (a function's lazy imports too);
    name is "" for `import module`. Migrations are left out: Django writes them."""
    found = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        if "migrations" in path.parts:
            continue
        pairs = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                pairs.update((alias.name, "") for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                pairs.update((node.module, alias.name) for alias in node.names)
        found[str(path.relative_to(ROOT))] = pairs
    return found


def imported_modules(package: str) -> dict[str, set[str]]:
    return {path: {module for module, _ in pairs} for path, pairs in imports(package).items()}


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(f"{package}.")


def offenders(package: str, forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    found = {
        path: sorted(module for module in modules if any(_within(module, other) for other in forbidden))
        for path, modules in imported_modules(package).items()
    }
    return {path: modules for path, modules in found.items() if modules}


# webhooks and checkout both build on payments and know nothing of each other.
@pytest.mark.parametrize(
    ("lower", "higher"),
    [
        ("payments", "checkout"),
        ("payments", "webhooks"),
        ("payments", "bench"),
        ("checkout", "bench"),
        ("checkout", "webhooks"),
        ("webhooks", "checkout"),
        ("webhooks", "bench"),
    ],
)
def test_a_lower_app_never_imports_a_higher_one(lower, higher):
    assert offenders(lower, (higher,)) == {}


@pytest.mark.parametrize("package", [*APPS, "infrastructure", "config"])
def test_nothing_imports_the_tests_least_of_all_the_chaos_harness(package):
    # tests/chaos/ (make chaos) starts the product's processes and imports bench's stack and clients; an import
    # the other way would ship the harness with the product, or make the bench depend on a test.
    assert offenders(package, ("tests",)) == {}


# bench/'s own wiring is the product's plus the bench's endpoints: each module builds on its counterpart in
# config/ (and on nothing else there), as config/ builds on the apps. It is wiring, not app code.
BENCH_WIRING = {
    "bench/settings.py": ["config.settings"],
    "bench/urls.py": ["config.urls"],
    "bench/asgi.py": ["config.asgi"],
}


@pytest.mark.parametrize("app", APPS)
def test_no_app_imports_config_which_only_wires_them_together(app):
    # Settings are read through django.conf.settings; config/ names the apps' code, never the other way round.
    found = offenders(app, ("config",))
    assert {path: modules for path, modules in found.items() if modules != BENCH_WIRING.get(path)} == {}


def test_config_wires_the_product_alone_and_never_names_bench():
    # make bench runs bench/settings.py; the product's wiring has no switch for it.
    assert offenders("config", ("bench",)) == {}
    assert not [path for path in (ROOT / "config").rglob("*.py") if "BENCH" in path.read_text()]


def test_infrastructure_is_the_lower_layer_it_imports_no_app_and_not_config():
    assert offenders("infrastructure", (*APPS, "config")) == {}


def test_tests_import_from_config_only_the_applications_under_test():
    from_config = {
        path: sorted(f"{module}.{name}" if name else module for module, name in pairs if _within(module, "config"))
        for path, pairs in imports("tests").items()
    }
    allowed = {"config.asgi.application", "config.wsgi.application"}
    assert {path: names for path, names in from_config.items() if set(names) - allowed} == {}
