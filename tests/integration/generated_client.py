"""A Python client generated from the API's OpenAPI document by openapi-python-client, as a client's developer
would make one, and a driver that checks what it parses against the document.

Generation is offline: the document is a file (`--path`), and the generator's post-generation hooks run the ruff
of this environment with `--isolated` (no configuration of ours or the user's). `--fail-on-warning` makes any
part of the document the generator cannot read (and would silently leave out) a failure.
"""

from __future__ import annotations

import datetime
import importlib
import json
import os
import pkgutil
import subprocess
import sys
import types
import typing
from pathlib import Path

import attrs

from tests.integration.openapi import Operation, operations

PACKAGE = "payments_api_client"
GENERATOR_CONFIG = {
    "post_hooks": ["ruff check . --isolated --fix-only --extend-select=I", "ruff format . --isolated"],
}


def generate_client(document: dict, where: Path) -> types.ModuleType:
    """Generate the client into `where` and import it (unload it with `unload_client`)."""
    source = where / "openapi.json"
    source.write_text(json.dumps(document))
    config = where / "openapi-python-client.json"
    config.write_text(json.dumps(GENERATOR_CONFIG))
    environment = {
        **os.environ,
        # The hooks' ruff is this environment's (openapi-python-client depends on it).
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        # Nothing to fetch: any HTTP(S) request the generator made would go to a closed port and fail it.
        "HTTP_PROXY": "http://127.0.0.1:9",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "ALL_PROXY": "http://127.0.0.1:9",
    }
    generated = subprocess.run(
        [
            sys.executable,
            "-m",
            "openapi_python_client",
            "generate",
            "--path",
            str(source),
            "--output-path",
            str(where / PACKAGE),
            "--meta",
            "none",
            "--config",
            str(config),
            "--fail-on-warning",
        ],
        cwd=where,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert generated.returncode == 0, generated.stdout + generated.stderr
    sys.path.insert(0, str(where))
    importlib.invalidate_caches()
    return importlib.import_module(PACKAGE)


def unload_client(where: Path) -> None:
    sys.path.remove(str(where))
    for name in [name for name in sys.modules if name == PACKAGE or name.startswith(f"{PACKAGE}.")]:
        del sys.modules[name]


class GeneratedApi:
    """The generated client's operations by operationId. Each call must answer the status code it is told to
    expect, which the document must list for the operation; its parsed result must be the model the document
    names for that code (nothing for a response without content), and every field of it must have its annotated
    type, with no field the document does not name. `called` tells which operations were used."""

    def __init__(self, package: types.ModuleType, document: dict, client):
        self.client = client
        self.models = importlib.import_module(f"{PACKAGE}.models")
        self.types = importlib.import_module(f"{PACKAGE}.types")
        self.errors = importlib.import_module(f"{PACKAGE}.errors")
        self.operations: dict[str, Operation] = {operation.id: operation for operation in operations(document)}
        self.modules = {}
        api = importlib.import_module(f"{PACKAGE}.api")
        for tag in pkgutil.iter_modules(api.__path__):
            tag_package = importlib.import_module(f"{PACKAGE}.api.{tag.name}")
            for module in pkgutil.iter_modules(tag_package.__path__):
                self.modules[module.name] = importlib.import_module(f"{tag_package.__name__}.{module.name}")
        missing = set(self.operations) - set(self.modules)
        assert not missing, f"operations the generator left out: {sorted(missing)}"
        self.called: set[str] = set()

    def __call__(self, operation_id: str, *, expect: int | set[int], client=None, **arguments):
        response = self.modules[operation_id].sync_detailed(client=client or self.client, **arguments)
        self.called.add(operation_id)
        return self.check(operation_id, response, expect=expect)

    def send(self, operation_id: str, *, expect: int | set[int], **request):
        """A request the typed signature cannot make (an empty filter, say), sent with the client's own
        connection and parsed by the operation's own code."""
        module = self.modules[operation_id]
        raw = self.client.get_httpx_client().request(**request)
        return self.check(operation_id, module._build_response(client=self.client, response=raw), expect=expect)

    def check(self, operation_id: str, response, *, expect: int | set[int]):
        operation = self.operations[operation_id]
        expected = {expect} if isinstance(expect, int) else expect
        assert response.status_code in expected, (operation_id, response.status_code, response.content[:500])
        assert response.status_code in operation.documented, (operation_id, response.status_code)
        content = operation.definition["responses"][str(response.status_code)].get("content")
        if content:
            (media_type,) = content.values()
            model = getattr(self.models, media_type["schema"]["$ref"].rsplit("/", 1)[-1])
            assert isinstance(response.parsed, model), (operation_id, type(response.parsed))
            self.assert_typed(response.parsed, model, operation_id)
        else:
            assert response.parsed is None
        return response

    def assert_typed(self, value, hint, where: str) -> None:
        origin, arguments = typing.get_origin(hint), typing.get_args(hint)
        if hint is typing.Any:
            return
        if origin in (typing.Union, types.UnionType):
            for arm in arguments:
                try:
                    self.assert_typed(value, arm, where)
                    return
                except AssertionError:
                    continue
            raise AssertionError(f"{where}: {value!r} is none of {hint}")
        if origin is list:
            assert type(value) is list, f"{where}: {value!r} is not a list"
            for index, item in enumerate(value):
                self.assert_typed(item, arguments[0], f"{where}[{index}]")
            return
        if origin is dict:
            assert type(value) is dict, f"{where}: {value!r} is not an object"
            for key, item in value.items():
                assert type(key) is str
                self.assert_typed(item, arguments[1], f"{where}.{key}")
            return
        if hint is type(None) or hint in (bool, int, str):
            # exactly: True is not an int here, nor 2400 a str
            assert type(value) is hint, f"{where}: {value!r} is not {hint.__name__}"
            return
        assert isinstance(value, hint), f"{where}: {value!r} is not {hint}"
        if isinstance(value, datetime.datetime):
            assert value.tzinfo is not None, f"{where}: {value!r} is a naive time"
        if attrs.has(hint):
            self.assert_model(value, where)

    def assert_model(self, model, where: str) -> None:
        hints = typing.get_type_hints(type(model), localns={**vars(self.models), "Unset": self.types.Unset})
        declared = [field.name for field in attrs.fields(type(model)) if field.name != "additional_properties"]
        if declared:
            # an object with named fields: the server sent only what the document names
            assert model.additional_properties == {}, f"{where}: undocumented {sorted(model.additional_properties)}"
        else:
            # a map (metadata, a problem's errors): its values have the document's type
            self.assert_typed(model.additional_properties, hints["additional_properties"], where)
        for name in declared:
            value = getattr(model, name)
            self.assert_typed(value, hints[name], f"{where}.{name}")
