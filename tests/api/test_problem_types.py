"""Every problem `type` the server can send resolves (issue 13, item 4): each code a problem document can carry,
listed from the source, has a page served by the app at its absolute `type` URL; a code without one is
about:blank; the OpenAPI document's examples name the same pages."""

import ast
import json
from pathlib import Path

import httpx
import pytest
from django.contrib.auth import get_user_model
from rest_framework import exceptions
from rest_framework.authtoken.models import Token

from infrastructure.problem_types import problem_type_get, problem_types_all
from infrastructure.problems import problem_body
from payments.api.docs import EXAMPLE_ORIGIN
from tests.api.helpers import BODY, assert_problem, create

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("infrastructure", "payments", "checkout", "config")
# The functions that build a problem document from a `code` (keyword, or the second positional argument).
PROBLEM_BUILDERS = {"problem_response", "problem_json", "problem_body", "_problem"}


def _name(node) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def _strings(node) -> set[str]:
    return {n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)}


def _api_exception_classes() -> list[type]:
    found, pending = [], [exceptions.APIException]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


def problem_codes_in_source() -> set[str]:
    """Every `code` the source can put in a problem document:
    - the `code` given to a problem builder, a constant or a local variable's constant values (`code = "a" if …
      else "b"`), or a caught refusal's `.code` (`except RefundNotAllowed as refused: … code=refused.code`), then
      every constant that refusal is raised with;
    - a constant `"code"` in a dict literal of problem fields, one with a "detail" (problem_fields_for's);
    - the code of every DRF exception DRF's handler turns into a problem: their default codes, and the `code=`
      our source raises one with (a ValidationError, DRF's or Django's, is always "validation_error")."""
    trees = [
        ast.parse(path.read_text(), str(path))
        for package in SOURCES
        for path in (ROOT / package).rglob("*.py")
        if "migrations" not in path.parts
    ]
    api_exceptions = {cls.__name__ for cls in _api_exception_classes()}
    codes: set[str] = set()
    refusals: set[str] = set()  # exception classes whose `.code` becomes a problem's
    for tree in trees:
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            caught = {
                handler.name: _name(handler.type)
                for handler in ast.walk(function)
                if isinstance(handler, ast.ExceptHandler) and handler.name
            }
            for call in ast.walk(function):
                if not isinstance(call, ast.Call) or _name(call.func) not in PROBLEM_BUILDERS:
                    continue
                given = [kw.value for kw in call.keywords if kw.arg == "code"] + call.args[1:2]
                for value in given:
                    if isinstance(value, ast.Constant):
                        codes.add(value.value)
                    elif isinstance(value, ast.Name):
                        for assign in ast.walk(function):
                            if isinstance(assign, ast.Assign) and any(_name(t) == value.id for t in assign.targets):
                                codes |= _strings(assign.value)
                    elif isinstance(value, ast.Attribute) and value.attr == "code" and _name(value.value) in caught:
                        refusals.add(caught[_name(value.value)])
                    else:
                        pytest.fail(f"cannot tell which codes {ast.unparse(call)} answers: teach this test")
        for node in ast.walk(tree):
            if isinstance(node, ast.Dict):
                members = {
                    key.value: value
                    for key, value in zip(node.keys, node.values, strict=True)
                    if isinstance(key, ast.Constant)
                }
                if "detail" in members and isinstance(members.get("code"), ast.Constant):
                    codes.add(members["code"].value)
            elif isinstance(node, ast.Call) and _name(node.func) in api_exceptions - {"ValidationError"}:
                codes |= {
                    kw.value.value for kw in node.keywords if kw.arg == "code" and isinstance(kw.value, ast.Constant)
                }
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and _name(node.exc.func) in refusals:
                first = node.exc.args[0] if node.exc.args else None
                assert isinstance(first, ast.Constant), ast.unparse(node)
                codes.add(first.value)
    for cls in _api_exception_classes():
        if cls is not exceptions.APIException and not issubclass(cls, exceptions.ValidationError):
            codes.add(cls.default_code)
    return codes


def test_the_source_is_read_as_it_is_written():
    # what the listing must find, one of each kind, or it proves nothing about the rest
    codes = problem_codes_in_source()
    assert {
        "idempotency_key_missing",  # a keyword constant
        "out_of_stock",  # a local variable of the checkout's
        "refund_exceeds_capture",  # a refusal raised by the refunds service
        "validation_error",  # problem_fields_for's dict
        "bad_request",  # a DRF exception raised with a code of ours
        "throttled",  # a DRF exception's default code
        "payload_too_large",  # an exception class of ours
    } <= codes


def test_every_code_the_source_can_answer_has_a_problem_type_and_every_type_is_answered():
    assert problem_codes_in_source() == {problem_type.code for problem_type in problem_types_all()}


@pytest.mark.django_db
def test_every_problem_type_the_api_can_answer_is_a_page_at_its_absolute_type_url(client):
    # given: every code the source can answer, and the `type` a document with it carries once it is sent
    for code in sorted(problem_codes_in_source()):
        problem_type = problem_type_get(code)
        status = problem_type.statuses[0]
        body = problem_body(status=status, code=code)
        # when: a client follows it
        page = client.get("http://testserver" + body["type"])
        # then: the page of that type, with its title and what to do
        assert page.status_code == 200, (code, body["type"], page.status_code)
        assert page["Content-Type"].startswith("text/html")
        html = page.content.decode()
        assert problem_type.title in html and f'"code": "{code}"' in html, code
        assert body["title"] == problem_type.title


def test_a_sent_problem_names_its_type_with_an_absolute_url_that_resolves(api, client):
    # given: problems made by DRF's handler (422), a view (400), the async status view (400) and the 404 handler
    missing_key = api.post("/api/v1/payments", BODY, format="json")
    invalid = create(api, {**BODY, "amount": "2400"})
    status_url = create(api).json()["links"]["status"]
    bad_wait = api.get(status_url + "?wait=99")
    no_path = api.get("/api/v1/nothing-here")
    answers = {
        "idempotency_key_missing": missing_key,
        "validation_error": invalid,
        "invalid_wait": bad_wait,
        "not_found": no_path,
    }
    for code, response in answers.items():
        problem = assert_problem(response, response.status_code, code)
        # then: the type is absolute, on the origin the client asked, and its page is there
        assert problem["type"] == f"http://testserver/problems/{code.replace('_', '-')}"
        assert problem["title"] == problem_type_get(code).title
        assert client.get(problem["type"]).status_code == 200
        assert int(response["Content-Length"]) == len(response.content)  # rewritten, and still true


def test_a_code_without_a_problem_type_is_about_blank_titled_with_the_status():
    body = problem_body(status=418, code="not_a_registered_code")
    assert (body["type"], body["title"]) == ("about:blank", "I'm a Teapot")


@pytest.mark.django_db
@pytest.mark.parametrize("slug", ["no-such-problem", "validation_error", "Validation-Error"])
def test_a_problem_page_that_does_not_exist_is_a_404(client, slug):
    assert client.get(f"/problems/{slug}").status_code == 404


@pytest.mark.django_db
def test_the_index_lists_every_problem_type(client):
    html = client.get("/problems/").content.decode()
    for problem_type in problem_types_all():
        assert f'href="{problem_type.path}"' in html


@pytest.mark.django_db
def test_the_openapi_documents_examples_name_the_problem_pages(client):
    schema = client.get("/api/v1/schema?format=json").json()
    examples = [
        example["value"]
        for path in schema["paths"].values()
        for operation in path.values()
        for status, response in operation.get("responses", {}).items()
        if status[:1] in "45"
        for content in response.get("content", {}).values()
        for example in content.get("examples", {}).values()
    ]
    assert examples
    for example in examples:
        problem_type = problem_type_get(example["code"])
        assert example["type"] == EXAMPLE_ORIGIN + problem_type.path
        assert example["title"] == problem_type.title


@pytest.mark.integration
def test_a_real_server_answers_a_type_a_client_can_follow(live_stack):
    # given: a real daphne, and a token
    token = Token.objects.create(user=get_user_model().objects.create_user("merchant-types")).key
    # when: a well-formed body with a wrong field
    response = httpx.post(
        live_stack.http_url + "/api/v1/payments",
        content=json.dumps({**BODY, "amount": "2400"}),
        headers={"Authorization": f"Token {token}", "Idempotency-Key": "types-1", "Content-Type": "application/json"},
        timeout=10,
    )
    # then: its type is an absolute URL on that server, and following it gets the page
    assert response.status_code == 422
    problem_type = response.json()["type"]
    assert problem_type == live_stack.http_url + "/problems/validation-error"
    page = httpx.get(problem_type, timeout=10)
    assert page.status_code == 200 and "Invalid fields" in page.text
