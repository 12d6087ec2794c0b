"""Every response the test suite receives, checked against the OpenAPI document.

`ContractCheck(app)` is an httpx response hook that the `client` fixture installs: for each
response to an operation of the document it checks that the status is one the operation
declares and that the body (JSON or problem+json) is valid against that response's schema,
problem codes included. A response the document does not describe fails the test that got
it, so the document cannot drift from what the server sends.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import jsonschema_rs
from litestar import Litestar

_PARAM = re.compile(r"\{([^}:]+)(?::([a-z]+))?\}")


class ContractViolation(AssertionError):
    pass


def _route_pattern(template: str) -> re.Pattern[str]:
    parts = []
    last = 0
    for match in _PARAM.finditer(template):
        parts.append(re.escape(template[last:match.start()]))
        parts.append(".+" if match.group(2) == "path" else "[^/]+")
        last = match.end()
    parts.append(re.escape(template[last:]))
    return re.compile("^" + "".join(parts) + "/?$")


def declares_problems(operation: dict[str, Any]) -> bool:
    return any("application/problem+json" in (r.get("content") or {}) for r in operation.get("responses", {}).values())


class ContractCheck:
    def __init__(self, app: Litestar) -> None:
        self.document: dict[str, Any] = app.openapi_schema.to_schema()
        self.components = self.document.get("components", {})
        # Literal paths before templated ones, so /api/workbook/next is not /api/exercises/{id}.
        templates = sorted(self.document["paths"], key=lambda t: (t.count("{"), -len(t)))
        self.routes = [(template, _route_pattern(template)) for template in templates]
        self._validators: dict[tuple[str, str, str, str], Any] = {}
        self.checked = 0

    def operation(self, method: str, path: str) -> tuple[str, dict[str, Any]] | None:
        for template, pattern in self.routes:
            if pattern.match(path):
                found = self.document["paths"][template].get(method.lower())
                if found is not None:
                    return template, found
        return None

    def _validator(self, template: str, method: str, status: str, media: str, schema: dict[str, Any]) -> Any:
        key = (template, method, status, media)
        if key not in self._validators:
            self._validators[key] = jsonschema_rs.validator_for({**schema, "components": self.components})
        return self._validators[key]

    def __call__(self, response: httpx.Response) -> None:
        request = response.request
        found = self.operation(request.method, request.url.path)
        if found is None:
            return
        template, operation = found
        status = str(response.status_code)
        declared = operation.get("responses", {})
        where = f"{request.method} {template} -> {status}"
        if not declares_problems(operation):
            return  # an operation without its problem responses fails tests/test_openapi.py on its own
        if status not in declared:
            raise ContractViolation(f"{where}: status not in the OpenAPI document ({sorted(declared)})")
        content = declared[status].get("content")
        if not content or response.status_code in (204, 304):
            return
        media = (response.headers.get("content-type") or "").split(";")[0].strip()
        if media not in content:
            raise ContractViolation(f"{where}: content type {media!r} not declared ({sorted(content)})")
        schema = content[media].get("schema")
        if not schema or media not in ("application/json", "application/problem+json"):
            return
        response.read()
        body = json.loads(response.content) if response.content else None
        errors = list(self._validator(template, request.method, status, media, schema).iter_errors(body))
        if errors:
            first = errors[0]
            raise ContractViolation(f"{where}: body does not match the document: {first} at {list(first.instance_path)}"
                                    f"\n{json.dumps(body)[:600]}")
        self.checked += 1
