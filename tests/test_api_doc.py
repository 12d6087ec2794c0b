"""docs/api.md and the OpenAPI document say the same thing.

The page (read by tests/api_examples.py) fails these tests when:
- its `### METHOD /path` sections are not exactly the document's operations, each under the
  `## ` heading of its tag;
- an example request is not a request to that operation, or its body does not fit the
  operation's request schema (jsonschema-rs, the document's components);
- an example response's status is not one the operation declares, or its body does not fit
  that status's schema;
- a section's `Problems:` line does not name the shared groups of its kind and exactly the
  other codes the operation declares, each with its status;
- the conventions' table of shared groups is not the groups of app/http/contract.py, or their
  table of codes is not `CODES`, or the version is not the service's;
- an example's status or request is not what the service answers in the story that made the
  examples (run again here, every response of it checked against the document).
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import jsonschema_rs
import pytest
from litestar.testing import TestClient

from app import __version__
from app.http import contract
from tests.api_examples import (
    API_DOC,
    NO_BODY,
    Section,
    code_rows,
    declared_codes,
    group_rows,
    groups_of,
    operations,
    pinned_clock,
    sections,
    specific_codes,
    tell,
)
from tests.contract import _route_pattern


@pytest.fixture(scope="module")
def page() -> str:
    return API_DOC.read_text(encoding="utf-8")


@pytest.fixture
def document(client: TestClient) -> dict[str, Any]:
    return client.get("/schema/openapi.json").json()  # type: ignore[no-any-return]


def errors_of(document: dict[str, Any], schema: dict[str, Any], value: Any) -> list[str]:
    validator = jsonschema_rs.validator_for({**schema, "components": document.get("components", {})})
    return [f"{error} at {list(error.instance_path)}" for error in validator.iter_errors(value)]


def paired(page: str, document: dict[str, Any]) -> list[tuple[Section, dict[str, Any]]]:
    ops = operations(document)
    return [(s, ops[(s.method, s.path)]) for s in sections(page) if (s.method, s.path) in ops]


def test_every_operation_has_one_section_under_its_tag(page: str, document: dict[str, Any]) -> None:
    ops = operations(document)
    found = [(s.method, s.path) for s in sections(page)]
    assert sorted(k for k in set(found) if found.count(k) > 1) == [], "operations with two sections"
    assert sorted(set(ops) - set(found)) == [], "operations of the document without a section"
    assert sorted(set(found) - set(ops)) == [], "sections that are no operation of the document"
    misplaced = [f"{s.method} {s.path} under '## {s.tag}', tagged {ops[(s.method, s.path)]['tags']}"
                 for s in sections(page) if (s.method, s.path) in ops
                 and s.tag.lower() not in [t.lower() for t in ops[(s.method, s.path)].get("tags", [])]]
    assert misplaced == []


def test_example_requests_fit_their_operation(page: str, document: dict[str, Any]) -> None:
    wrong = []
    for section, op in paired(page, document):
        where = f"{section.method} {section.path}"
        if section.request is None:
            wrong.append(f"{where}: no `Request:` line")
            continue
        method, target = section.request
        url = urlsplit(target)
        if method != section.method or not _route_pattern(section.path).match(url.path):
            wrong.append(f"{where}: the example requests {method} {url.path}")
        names = {p["name"] for p in op.get("parameters", []) if p.get("in") == "query"}
        unknown = sorted({key for key, _ in parse_qsl(url.query, keep_blank_values=True)} - names)
        if unknown:
            wrong.append(f"{where}: query parameters the operation does not take: {unknown}")
        body = op.get("requestBody")
        if body is None:
            if section.request_body is not NO_BODY:
                wrong.append(f"{where}: an example body for an operation that takes none")
            continue
        if section.request_body is NO_BODY:
            wrong.append(f"{where}: no example body (a ```json block after `Request:`)")
            continue
        schema = body["content"]["application/json"]["schema"]
        wrong += [f"{where} request: {e}" for e in errors_of(document, schema, section.request_body)]
    assert wrong == []


def test_example_responses_fit_their_operation(page: str, document: dict[str, Any]) -> None:
    wrong = []
    for section, op in paired(page, document):
        where = f"{section.method} {section.path}"
        if not section.responses:
            wrong.append(f"{where}: no `Response NNN:` example")
        for status, body in section.responses or []:
            declared = op["responses"].get(str(status))
            if declared is None or not 200 <= status < 300:
                wrong.append(f"{where}: {status} is not a success the operation declares ({sorted(op['responses'])})")
                continue
            schema = (declared.get("content") or {}).get("application/json", {}).get("schema")
            if status == 204 or schema is None:  # Litestar gives a 204 a `null` schema; it has no body
                if body is not None:
                    wrong.append(f"{where} {status}: a body where the document declares none")
                continue
            if body is None:
                wrong.append(f"{where} {status}: no example body")
                continue
            wrong += [f"{where} {status}: {e}" for e in errors_of(document, schema, body)]
    assert wrong == []


def test_problems_lines_name_what_each_operation_declares(page: str, document: dict[str, Any]) -> None:
    wrong = []
    for section, op in paired(page, document):
        where = f"{section.method} {section.path}"
        if section.groups is None or section.codes is None:
            wrong.append(f"{where}: no `Problems:` line")
            continue
        if section.groups != groups_of(document, op):
            wrong.append(f"{where}: shared groups {section.groups}, the operation's kind has {groups_of(document, op)}")
        declared = declared_codes(document, op)
        for name in groups_of(document, op):
            missing = [c for c in getattr(contract, name) if c not in declared]
            if missing:
                wrong.append(f"{where}: is of kind {name} but does not declare {missing}")
        if sorted(section.codes) != sorted(specific_codes(document, op)):
            wrong.append(f"{where}: Problems {sorted(section.codes)}, declared {sorted(specific_codes(document, op))}")
    assert wrong == []


def test_the_conventions_list_the_shared_groups(page: str) -> None:
    # Every tuple of codes in contract.py is a group an operation of some kind shares.
    groups = {name: value for name, value in vars(contract).items()
              if name.isupper() and isinstance(value, tuple) and value and all(c in contract.CODES for c in value)}
    assert [(name, codes) for name, _, codes in group_rows(page)] == list(groups.items())
    assert all(when for _, when, _ in group_rows(page))


def test_the_conventions_table_of_codes_is_CODES(page: str) -> None:
    rows = code_rows(page)
    assert [(code, status) for status, code, _ in rows] == sorted(
        contract.CODES.items(), key=lambda item: (item[1], list(contract.CODES).index(item[0])))
    assert [code for _, code, when in rows if not when] == [], "codes without a description"


def test_the_page_describes_this_version(page: str) -> None:
    assert re.findall(r"This page describes version (\S+) of the service", page) == [__version__]


def test_the_examples_are_what_the_service_answers(page: str, full_seed, client: TestClient) -> None:
    """The story behind the examples, told again: each example's status and request are what
    the service does now (the client fixture checks every response against the document)."""
    with pinned_clock() as clock:
        examples = tell(client, clock)
    wrong = []
    for section in sections(page):
        key = (section.method, section.path)
        example = examples.get(key)
        if example is None:
            wrong.append(f"{key}: the story has no example of it")
            continue
        shown = [status for status, _ in section.responses or []]
        if shown != [example.status]:
            wrong.append(f"{key}: the page shows {shown}, the service answered {example.status}")
        if section.request and urlsplit(section.request[1]).query != urlsplit(example.target).query:
            wrong.append(f"{key}: the page asks {section.request[1]}, the story {example.target}")
        if (section.request_body is NO_BODY) != (example.request is NO_BODY):
            wrong.append(f"{key}: the page and the story differ on sending a body")
        elif section.request_body is not NO_BODY and _shape(section.request_body) != _shape(example.request):
            wrong.append(f"{key}: the page's request body is not the story's: {json.dumps(example.request)[:200]}")
    assert wrong == []
    assert sorted(examples) == sorted((s.method, s.path) for s in sections(page))


def _shape(value: Any) -> Any:
    """A body with its values replaced by their types (ids and codes are new on every run)."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return type(value).__name__
