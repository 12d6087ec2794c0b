"""The OpenAPI document is the contract: complete, and what the server really sends.

- every operation has a typed success body (no bare `{type: object}`), a typed request body
  where it takes one, and its problem responses (`application/problem+json`, with the codes
  it can give as an enum);
- tests/contract.py checks every response the rest of the suite receives against it; the
  tests here show that check catches what it must.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from litestar.testing import TestClient

from app.db.connection import connect_sync
from app.http.contract import CODES
from tests.contract import ContractCheck, ContractViolation

METHODS = ("get", "put", "post", "patch", "delete")


@pytest.fixture
def document(client: TestClient) -> dict[str, Any]:
    return client.get("/schema/openapi.json").json()  # type: ignore[no-any-return]


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method.upper(), path, op) for path, item in document["paths"].items()
            for method, op in item.items() if method in METHODS]


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def untyped(document: dict[str, Any], schema: dict[str, Any] | None) -> bool:
    """A schema that says nothing about the body: missing, `{}` or an object without properties."""
    if not schema:
        return True
    schema = resolve(document, schema)
    for key in ("oneOf", "anyOf"):
        if key in schema:
            return any(untyped(document, s) for s in schema[key])
    if schema.get("type") == "array":
        return untyped(document, schema.get("items"))
    if schema.get("type") == "object" or "properties" in schema:
        return not schema.get("properties") and not schema.get("additionalProperties")
    return "type" not in schema and "const" not in schema and "enum" not in schema


def test_every_operation_has_a_typed_success_body(document: dict[str, Any]) -> None:
    missing = []
    for method, path, op in operations(document):
        for status, response in op["responses"].items():
            if not status.startswith("2") or status == "204":
                continue
            schema = (response.get("content") or {}).get("application/json", {}).get("schema")
            if untyped(document, schema):
                missing.append(f"{method} {path} {status}")
    assert missing == []


def test_every_request_body_is_typed(document: dict[str, Any]) -> None:
    missing = [f"{method} {path}" for method, path, op in operations(document)
               if "requestBody" in op
               and untyped(document, op["requestBody"]["content"].get("application/json", {}).get("schema"))]
    assert missing == []


def test_a_request_body_is_required_exactly_when_the_handler_needs_one(client: TestClient,
                                                                   document: dict[str, Any]) -> None:
    """Litestar marks every body required; a handler whose `data` has a default (the export's
    password) takes none, and the document must say so."""
    from litestar.routes import HTTPRoute

    wrong = []
    for route in client.app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            data = handler.parsed_fn_signature.parameters.get("data")
            if data is None or not handler.resolve_include_in_schema():
                continue
            for method in handler.http_methods:
                said = document["paths"][route.path_format][method.lower()]["requestBody"]
                if said.get("required", False) == data.has_default:
                    wrong.append(f"{method} {route.path_format}: required={said.get('required')}")
    assert wrong == []


def test_every_operation_declares_its_problem_responses(document: dict[str, Any]) -> None:
    missing = []
    for method, path, op in operations(document):
        problems = {status: r["content"]["application/problem+json"]["schema"]
                    for status, r in op["responses"].items()
                    if "application/problem+json" in (r.get("content") or {})}
        if "500" not in problems or "503" not in problems:
            missing.append(f"{method} {path}: no 500/503 problem responses")
        if path.startswith("/api/") and method != "GET" and "403" not in problems:
            missing.append(f"{method} {path}: a change without its 403 csrf_failed")
        for status, schema in problems.items():
            body = resolve(document, schema)
            code = body["properties"]["code"]
            codes = code.get("enum") or ([code["const"]] if "const" in code else None)
            if not codes:
                missing.append(f"{method} {path} {status}: no enum of codes")
                continue
            wrong = [c for c in codes if CODES.get(c) != int(status)]
            if wrong:
                missing.append(f"{method} {path} {status}: codes of another status {wrong}")
            if set(body["required"]) != {"type", "status", "title", "detail", "code"}:
                missing.append(f"{method} {path} {status}: problem fields {body['required']}")
        if any(r.get("content", {}).get("application/json") and s.startswith(("4", "5"))
               for s, r in op["responses"].items()):
            missing.append(f"{method} {path}: an error declared as application/json")
    assert missing == []


def test_the_check_refuses_what_the_document_does_not_say(client: TestClient) -> None:
    check = ContractCheck(client.app)

    def answer(method: str, path: str, status: int, body: Any, media: str = "application/problem+json") -> None:
        request = httpx.Request(method, f"https://testserver.local{path}")
        check(httpx.Response(status, json=body, headers={"content-type": media}, request=request))

    problem = {"type": "about:blank", "status": 403, "title": "Forbidden", "detail": "x", "code": "exercise_locked"}
    answer("GET", "/api/exercises/1.1.1.v1", 403, problem)
    with pytest.raises(ContractViolation, match="body does not match"):
        answer("GET", "/api/exercises/1.1.1.v1", 403, {**problem, "code": "tool_locked"})
    with pytest.raises(ContractViolation, match="status not in the OpenAPI document"):
        answer("GET", "/api/exercises/1.1.1.v1", 418, {**problem, "status": 418})
    with pytest.raises(ContractViolation, match="body does not match"):
        answer("GET", "/api/workbook", 200, {"parts": "no"}, "application/json")
    with pytest.raises(ContractViolation, match="content type"):
        answer("GET", "/api/workbook", 401, {**problem, "status": 401, "code": "no_session"}, "application/json")


def test_a_change_without_a_body_refuses_a_form_as_its_document_says(new_reader) -> None:
    """Any POST/PUT/PATCH/DELETE sent a body that is not JSON is refused with 415 before it
    runs, also when the operation reads no body: the document says so (the client fixture's
    check fails the test otherwise)."""
    reader = new_reader()
    reader.start()
    for method, path in [("POST", "/api/session"), ("DELETE", "/api/account/sessions/x"),
                         ("DELETE", "/api/tool-instances/x"), ("DELETE", "/api/session")]:
        refused = reader.request(method, path, content=b"a=1", headers={"content-type": "application/x-www-form-urlencoded"})
        assert (refused.status_code, refused.json()["code"]) == (415, "unsupported_media_type"), (method, path)


def test_a_stored_value_that_fails_its_check_is_a_declared_500(new_reader, seeded, db_path) -> None:
    """Two of a reader's sealed answers swapped in the database: reading one is 500
    `integrity_error`, a code the document declares (the client fixture's check fails the
    test otherwise)."""
    from tests.helpers import query

    reader = new_reader()
    reader.start()
    for place in ("1.1.1.v1", "1.1.2.v1"):
        assert reader.put(f"/api/exercises/{place}/response", {"response": {"text": place}}).status_code == 200
    rows = query(db_path, "SELECT id, response_json FROM exercise_responses ORDER BY full_exercise_id")
    conn = connect_sync(db_path, strict=False)
    try:
        with conn:
            for (row_id, _), (_, sealed) in zip(rows, reversed(rows)):
                conn.execute("UPDATE exercise_responses SET response_json = ? WHERE id = ?", (sealed, row_id))
    finally:
        conn.close()
    read = reader.get("/api/exercises/1.1.1.v1")
    assert (read.status_code, read.json()["code"]) == (500, "integrity_error")
