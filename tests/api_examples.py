"""The examples of docs/api.md, taken from real responses.

A reader's story, driven in-process against the sample workbook (the project's own seed/):
start a workbook, answer, use the tools, rate competencies, save the workbook, move it
between devices, recover it and delete it. Each operation of the OpenAPI document is
recorded once, where the story marks it (`example=True`), with the request as sent and the
response as received; every response of the story is also checked against the document
(tests/contract.py).

    .venv/bin/python -m tests.api_examples           # print the examples
    .venv/bin/python -m tests.api_examples --write   # put them into docs/api.md

`--write` rewrites only what the code knows: each section's `Request:` / `Response …:`
blocks and its `Problems:` line, the table of problem codes (from `CODES`, keeping each
code's description) and the table of shared problem groups. The prose is written by hand.
tests/test_api_doc.py runs the same story and checks docs/api.md against the document.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from litestar.testing import TestClient

from app.http import contract

ROOT = Path(__file__).resolve().parents[1]
API_DOC = ROOT / "docs" / "api.md"

EMAIL = "ada@example.org"
PASSWORD = "river lantern pocket moss"
NEW_PASSWORD = "copper kettle under snow"
NEWEST_PASSWORD = "seven quiet harbour lights"
# The story's clock: every timestamp in the examples is this moment plus the story's steps.
START = datetime(2026, 3, 9, 8, 0, tzinfo=timezone.utc)

# The problem groups every operation of a kind shares (contract.py), in the order the
# conventions list them, with what makes an operation of that kind.
GROUPS: dict[str, tuple[tuple[str, ...], str]] = {
    "ANY": (contract.ANY, "every operation"),
    "READER": (contract.READER, "an operation for a signed-in reader (it needs the session cookie)"),
    "BODY": (contract.BODY, "an operation that reads a JSON body"),
    "QUERY": (contract.QUERY, "an operation with query parameters"),
    "CHANGE": (contract.CHANGE, "an operation that changes something (POST, PUT, PATCH, DELETE)"),
}

NO_BODY = object()


@dataclass
class Example:
    method: str
    template: str
    target: str  # the path as requested, with its query
    request: Any  # the JSON body sent, or NO_BODY
    status: int
    response: Any  # the JSON body received, or None


# --- the story ------------------------------------------------------------------------------


class Clock:
    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def now(self) -> datetime:
        return self.moment

    def advance(self, **delta: float) -> None:
        self.moment += timedelta(**delta)


@contextmanager
def pinned_clock(start: datetime = START) -> Iterator[Clock]:
    """The service's one clock (app.timeutil.now) pinned, so the examples' timestamps are the
    same on every run."""
    from app import timeutil

    clock = Clock(start)
    real = timeutil.now
    timeutil.now = clock.now  # type: ignore[assignment]
    try:
        yield clock
    finally:
        timeutil.now = real  # type: ignore[assignment]


class Device:
    """One browser (its own cookies, the CSRF header like the page sends it) whose marked
    requests become examples."""

    def __init__(self, story: Story) -> None:
        self.story = story
        self.jar = httpx.Cookies()

    def call(self, method: str, target: str, body: Any = NO_BODY, *, example: bool = False,
             headers: dict[str, str] | None = None) -> httpx.Response:
        client = self.story.client
        sent = dict(headers or {})
        if method != "GET":
            sent.setdefault("x-csrftoken", self.jar.get("csrftoken") or "")
        client.cookies = self.jar
        try:
            kwargs: dict[str, Any] = {} if body is NO_BODY else {"json": body}
            response = client.request(method, target, headers=sent, **kwargs)
        finally:
            self.jar = httpx.Cookies(client.cookies)
            client.cookies = httpx.Cookies()
        self.story.clock.advance(seconds=37)
        if response.status_code >= 300:
            raise AssertionError(f"{method} {target}: {response.status_code} {response.text}")
        if example:
            self.story.record(method, target, body, response)
        return response

    def get(self, target: str, **kw: Any) -> Any:
        return self.call("GET", target, **kw).json()

    def send(self, method: str, target: str, body: Any = NO_BODY, **kw: Any) -> Any:
        response = self.call(method, target, body, **kw)
        return response.json() if response.content else None


class Story:
    def __init__(self, client: TestClient, clock: Clock) -> None:
        from tests.contract import ContractCheck

        self.client = client
        self.clock = clock
        self.check = ContractCheck(client.app)
        self.examples: dict[tuple[str, str], Example] = {}

    def record(self, method: str, target: str, body: Any, response: httpx.Response) -> None:
        found = self.check.operation(method, urlsplit(target).path)
        if found is None:
            raise AssertionError(f"{method} {target} is not an operation of the OpenAPI document")
        template = found[0]
        if (method, template) in self.examples:
            raise AssertionError(f"{method} {template} is recorded twice")
        self.examples[(method, template)] = Example(
            method, template, target, body, response.status_code, response.json() if response.content else None)

    def device(self) -> Device:
        return Device(self)


def tell(client: TestClient, clock: Clock) -> dict[tuple[str, str], Example]:
    """Run the story on `client` (an app whose database holds the sample workbook, its clock
    pinned by `clock`); one example per operation, keyed by (METHOD, path template)."""
    story = Story(client, clock)
    laptop = story.device()

    laptop.get("/healthz", example=True)  # the page's first load also brings the csrftoken cookie
    laptop.send("POST", "/api/session", example=True)
    laptop.get("/api/me", example=True)
    laptop.get("/api/workbook", example=True)
    laptop.get("/api/workbook/next", example=True)
    laptop.get("/api/exercises/1.1.1.v1", example=True)

    found = laptop.get("/api/skills?q=listen", example=True)
    listening = found[0]["id"]
    laptop.send("PUT", "/api/exercises/1.1.1.v1/response", {
        "response": {"text": "Barista (2012–2014): mornings, regulars, learning to listen.\n"
                             "Library assistant (2015–2019): cataloguing, a reading club for teenagers."},
        "skills": [listening],
    }, example=True)
    laptop.send("PUT", "/api/exercises/1.1.2.v1/response",
                {"response": {"text": "A restructure at work; away from night shifts, toward teaching."}})
    laptop.send("PUT", "/api/exercises/1.1.3.v1/response",
                {"response": {"health": 6, "work": 4, "play": 3, "love": 8}})
    laptop.get("/api/modules", example=True)
    laptop.send("PUT", "/api/exercises/1.2.1.v1/response", {"response": {"text": "Mornings lift me; meetings drain."}})
    laptop.send("PUT", "/api/exercises/1.2.2.v1/response", {"response": {"text": "Running the reading club."}})

    laptop.get("/api/tools", example=True)
    entry = laptop.send("POST", "/api/tools/list-builder/instances", {
        "content": {"title": "Roles I have held", "items": ["Barista", "Library assistant"]},
        "origin": "1.1.1.v1",
        "skills": [listening],
    }, example=True)
    laptop.get("/api/tools/list-builder/instances", example=True)
    laptop.get(f"/api/tool-instances/{entry['id']}", example=True)
    laptop.send("PUT", f"/api/tool-instances/{entry['id']}", {
        "content": {"title": "Roles I have held", "items": ["Barista", "Library assistant", "Club treasurer"]},
    }, example=True)
    spare = laptop.send("POST", "/api/tools/list-builder/instances", {"content": {"title": "Scratch list"}})
    laptop.send("DELETE", f"/api/tool-instances/{spare['id']}", example=True)
    laptop.get("/api/daily-dos?tz=America/Chicago", example=True)

    competencies = laptop.get("/api/competencies", example=True)
    laptop.send("PUT", "/api/competencies/scores", {"scores": [
        {"competency_id": competencies[0]["id"], "score": 4},
        {"competency_id": competencies[1]["id"], "score": 2},
    ]}, example=True)
    laptop.get("/api/competencies/scores", example=True)
    laptop.get("/api/competencies/summary", example=True)

    laptop.get("/api/settings", example=True)
    laptop.send("PATCH", "/api/settings", {"font": "serif", "personality_type": "INFJ"}, example=True)
    laptop.get("/api/personality-types", example=True)
    laptop.get("/api/references", example=True)
    laptop.send("POST", "/api/skills", {"name": "Bread baking", "category": "knowledge"}, example=True)

    claimed = laptop.send("POST", "/api/account/claim", {"email": EMAIL, "password": PASSWORD}, example=True)
    laptop.send("POST", "/api/export?readable=true", {"password": PASSWORD}, example=True)

    # A phone: an anonymous workbook of its own, then signed in, merging it.
    phone = story.device()
    phone.get("/healthz")
    phone.send("POST", "/api/session")
    phone.send("PUT", "/api/exercises/1.1.1.v1/response", {"response": {"text": "Barista, librarian, treasurer."}})
    moved = phone.send("POST", "/api/export")
    laptop.send("POST", "/api/import?dry_run=true", moved, example=True)
    phone.send("POST", "/api/auth/login", {"email": EMAIL, "password": PASSWORD, "merge_anonymous": True},
               example=True)

    devices = laptop.get("/api/account/sessions", example=True)
    other = next(d["id"] for d in devices if not d["current"])
    laptop.send("DELETE", f"/api/account/sessions/{other}", example=True)
    laptop.send("POST", "/api/account/password", {"current_password": PASSWORD, "new_password": NEW_PASSWORD},
                example=True)

    # A borrowed computer: signed in, then out.
    borrowed = story.device()
    borrowed.get("/healthz")
    borrowed.send("POST", "/api/auth/login", {"email": EMAIL, "password": NEW_PASSWORD})
    borrowed.send("DELETE", "/api/session", example=True)

    # A new tablet, the password forgotten: the recovery code from the claim.
    tablet = story.device()
    tablet.get("/healthz")
    tablet.send("POST", "/api/account/recover", {"email": EMAIL, "recovery_code": claimed["recovery_code"],
                                                 "new_password": NEWEST_PASSWORD}, example=True)
    tablet.send("DELETE", "/api/account", {"password": NEWEST_PASSWORD}, example=True)
    return story.examples


@contextmanager
def sample_app() -> Iterator[tuple[TestClient, Clock]]:
    """The app on a fresh database holding the sample workbook, its clock pinned."""
    from app.config import Settings
    from app.db import migrations
    from app.db.connection import connect_sync
    from app.domain import seeding
    from app.http.app import create_app

    with tempfile.TemporaryDirectory() as folder, pinned_clock() as clock:
        path = Path(folder) / "dreamtree.db"
        conn = connect_sync(path)
        try:
            migrations.apply(conn)
            seeding.seed(conn)
        finally:
            conn.close()
        app = create_app(Settings(db_path=path, secure_cookies=True, d1_strict=True, argon2="fast", access_log=False))
        with TestClient(app, base_url="https://testserver.local") as client:
            from tests.contract import ContractCheck

            client.event_hooks["response"].append(ContractCheck(app))
            yield client, clock



# --- docs/api.md: reading it -----------------------------------------------------------------

OPERATION = re.compile(r"^### (GET|PUT|POST|PATCH|DELETE) (/\S*)$")
LOOKS_LIKE_OPERATION = re.compile(r"^### [A-Z]+ /")
REQUEST = re.compile(r"^Request: `([A-Z]+) (/\S*)`$")
RESPONSE = re.compile(r"^Response (\d{3}):( no body\.)?$")
PROBLEMS = re.compile(r"^Problems: (.*)\.$")
PROBLEM_STATUS = re.compile(r"^(\d{3}) (`[a-z_]+`(?:, `[a-z_]+`)*)$")


class DocError(ValueError):
    """docs/api.md is not in the shape this module reads."""


@dataclass
class Section:
    method: str
    path: str
    tag: str  # the `## ` heading the section is under
    start: int  # line index of the heading
    end: int  # line index after the section
    request: tuple[str, str] | None = None  # (METHOD, target) of the `Request:` line
    request_body: Any = NO_BODY
    responses: list[tuple[int, Any]] | None = None  # (status, body or None)
    groups: list[str] | None = None  # the shared groups the `Problems:` line names
    codes: list[tuple[int, str]] | None = None  # the specific (status, code) pairs it names
    example_start: int | None = None  # line index of `Request:`
    example_end: int | None = None  # line index after `Problems:`


def _json_block(lines: list[str], at: int, where: str) -> tuple[Any, int]:
    """The JSON of the ```json block at or after line `at` (blank lines skipped); its value and
    the line after it."""
    while at < len(lines) and not lines[at].strip():
        at += 1
    if at >= len(lines) or lines[at].strip() != "```json":
        raise DocError(f"{where}: a ```json block should follow")
    end = at + 1
    while end < len(lines) and lines[end].strip() != "```":
        end += 1
    if end >= len(lines):
        raise DocError(f"{where}: the ```json block is not closed")
    try:
        return json.loads("\n".join(lines[at + 1:end])), end + 1
    except json.JSONDecodeError as exc:
        raise DocError(f"{where}: not JSON ({exc})") from None


def _parse_problems(text: str, where: str) -> tuple[list[str], list[tuple[int, str]]]:
    parts = text.split("; ")
    groups = [g.strip() for g in parts[0].split(",")]
    codes: list[tuple[int, str]] = []
    for part in parts[1:]:
        found = PROBLEM_STATUS.match(part)
        if not found:
            raise DocError(f"{where}: {part!r} is not `STATUS `code`, `code``")
        codes += [(int(found.group(1)), code.strip("` ")) for code in found.group(2).split(",")]
    return groups, codes


def _headings(lines: list[str]) -> list[Section]:
    """Where each `### METHOD /path` section starts and ends, under its `## tag`."""
    found: list[Section] = []
    tag = ""
    for number, line in enumerate(lines):
        if line.startswith("## "):
            tag = line[3:].strip()
        if line.startswith(("## ", "### ", "# ")) and found and found[-1].end == -1:
            found[-1].end = number
        if line.startswith("### "):
            match = OPERATION.match(line)
            if match:
                found.append(Section(match.group(1), match.group(2), tag, number, -1))
            elif LOOKS_LIKE_OPERATION.match(line):
                raise DocError(f"line {number + 1}: {line!r} is not `### METHOD /path`")
    if found and found[-1].end == -1:
        found[-1].end = len(lines)
    return found


def _request_line(lines: list[str], section: Section, at: int, where: str) -> int:
    """A `Request:` line and its JSON body, if one follows; the line to read next."""
    request = REQUEST.match(lines[at])
    if not request or section.request is not None:
        raise DocError(f"{where}: one line `Request: `METHOD /target`` per section")
    section.request = (request.group(1), request.group(2))
    section.example_start = at
    after = at + 1
    while after < section.end and not lines[after].strip():
        after += 1
    if after < section.end and lines[after].strip() == "```json":
        section.request_body, at = _json_block(lines, after, f"{where} request")
        return at
    return at + 1


def _response_line(lines: list[str], at: int, where: str, responses: list[tuple[int, Any]]) -> int:
    """A `Response NNN:` line and its JSON body (or `no body.`); the line to read next."""
    response = RESPONSE.match(lines[at])
    if not response:
        raise DocError(f"{where}: {lines[at]!r} is not `Response NNN:` (or `Response NNN: no body.`)")
    status = int(response.group(1))
    if response.group(2):
        responses.append((status, None))
        return at + 1
    body, at = _json_block(lines, at + 1, f"{where} response {status}")
    responses.append((status, body))
    return at


def _read_section(lines: list[str], section: Section) -> None:
    where = f"{section.method} {section.path}"
    at = section.start + 1
    responses: list[tuple[int, Any]] = []
    while at < section.end:
        line = lines[at]
        if line.startswith("Request:"):
            at = _request_line(lines, section, at, where)
            continue
        if line.startswith("Response "):
            at = _response_line(lines, at, where, responses)
            continue
        if line.startswith("Problems:"):
            problems = PROBLEMS.match(line)
            if not problems or section.groups is not None:
                raise DocError(f"{where}: one line `Problems: GROUPS; STATUS `code`, ….` per section")
            section.groups, section.codes = _parse_problems(problems.group(1), where)
            section.example_end = at + 1
        at += 1
    section.responses = responses


def sections(text: str) -> list[Section]:
    """The operation sections of docs/api.md, each with what its example and `Problems:` say."""
    lines = text.splitlines()
    found = _headings(lines)
    for section in found:
        _read_section(lines, section)
    return found


def table(text: str, name: str) -> list[list[str]]:
    """The rows (cells, stripped) of the table between `<!-- name -->` and `<!-- /name -->`,
    without its header."""
    opening, closing = f"<!-- {name} -->", f"<!-- /{name} -->"
    if opening not in text or closing not in text:
        raise DocError(f"no {opening} … {closing} table")
    inside = text.split(opening, 1)[1].split(closing, 1)[0]
    rows = [line.strip() for line in inside.strip().splitlines() if line.strip().startswith("|")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows[2:]]


def code_rows(text: str) -> list[tuple[int, str, str]]:
    """The conventions' table of problem codes: (status, code, when)."""
    return [(int(status), code.strip("`"), when) for status, code, when in table(text, "codes")]


def group_rows(text: str) -> list[tuple[str, str, tuple[str, ...]]]:
    """The conventions' table of shared problem groups: (name, when an operation has them, codes)."""
    return [(name.strip("`"), when, tuple(c.strip(" `") for c in codes.split(",")))
            for name, when, codes in table(text, "groups")]


# --- the OpenAPI document --------------------------------------------------------------------

METHODS = ("get", "put", "post", "patch", "delete")


def operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(method.upper(), path): op for path, item in document["paths"].items()
            for method, op in item.items() if method in METHODS}


def declared_codes(document: dict[str, Any], operation: dict[str, Any]) -> set[str]:
    """Every problem code the operation declares, over all its statuses."""
    codes: set[str] = set()
    for response in operation.get("responses", {}).values():
        schema = (response.get("content") or {}).get(contract.PROBLEM_JSON, {}).get("schema")
        while schema and "$ref" in schema:
            schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
        if schema:
            code = schema["properties"]["code"]
            codes.update(code.get("enum") or [code["const"]])
    return codes


def groups_of(document: dict[str, Any], operation: dict[str, Any]) -> list[str]:
    """The shared groups of an operation, by what it is: every operation; one that names a
    signed-in reader or changes something (it declares that group whole); one with a JSON body
    or with query parameters."""
    declared = declared_codes(document, operation)
    kinds = {
        "ANY": True,
        "READER": set(contract.READER) <= declared,
        "BODY": "requestBody" in operation,
        "QUERY": any(p.get("in") == "query" for p in operation.get("parameters", [])),
        "CHANGE": set(contract.CHANGE) <= declared,
    }
    return [name for name in GROUPS if kinds[name]]


def specific_codes(document: dict[str, Any], operation: dict[str, Any]) -> list[tuple[int, str]]:
    """The operation's own problems: what it declares beyond its shared groups, by status and
    then in `CODES` order."""
    shared = {code for name in groups_of(document, operation) for code in GROUPS[name][0]}
    order = list(contract.CODES)
    own = sorted(declared_codes(document, operation) - shared, key=lambda c: (contract.CODES[c], order.index(c)))
    return [(contract.CODES[code], code) for code in own]


# --- docs/api.md: writing it -----------------------------------------------------------------

# An example keeps the first items of a long array: of the body itself (a list) TOP_ITEMS, and of
# the arrays under these keys so many. Other arrays are shown whole (a tool's content, a JSON
# Schema), so an example always fits its schema.
TOP_ITEMS = 2
TOP_ITEMS_OF = {("GET", "/api/tools"): 1}
ITEMS_UNDER = {"parts": 1, "modules": 1, "exercises": 2, "blocks": 1, "sources": 1, "levels": 1,
               "key_concepts": 1, "referenced_in": 1, "used_in": 1}


def trim(value: Any, top: int = TOP_ITEMS) -> Any:
    def walk(item: Any, keep: int | None) -> Any:
        if isinstance(item, list):
            return [walk(v, None) for v in (item if keep is None else item[:keep])]
        if isinstance(item, dict):
            return {k: walk(v, ITEMS_UNDER.get(k)) for k, v in item.items()}
        return item

    return walk(value, top)


def block(value: Any) -> list[str]:
    return ["```json", *json.dumps(value, indent=2, ensure_ascii=False).splitlines(), "```"]


def problems_line(document: dict[str, Any], operation: dict[str, Any]) -> str:
    by_status: dict[int, list[str]] = {}
    for status, code in specific_codes(document, operation):
        by_status.setdefault(status, []).append(f"`{code}`")
    parts = [", ".join(groups_of(document, operation))]
    parts += [f"{status} " + ", ".join(codes) for status, codes in sorted(by_status.items())]
    return "Problems: " + "; ".join(parts) + "."


def render_example(example: Example, problems: str) -> list[str]:
    lines = [f"Request: `{example.method} {example.target}`"]
    if example.request is not NO_BODY:
        lines += ["", *block(example.request)]
    lines.append("")
    if example.response is None:
        lines.append(f"Response {example.status}: no body.")
    else:
        top = TOP_ITEMS_OF.get((example.method, example.template), TOP_ITEMS)
        lines += [f"Response {example.status}:", "", *block(trim(example.response, top))]
    return [*lines, "", problems]


def render_codes(text: str) -> list[str]:
    """The table of problem codes from `CODES`, keeping the descriptions the page has."""
    known = {code: when for _, code, when in code_rows(text)} if "<!-- codes -->" in text else {}
    rows = ["| status | code | when |", "|---|---|---|"]
    order = list(contract.CODES)
    for code in sorted(contract.CODES, key=lambda c: (contract.CODES[c], order.index(c))):
        rows.append(f"| {contract.CODES[code]} | `{code}` | {known.get(code, '')} |")
    return rows


def render_groups() -> list[str]:
    rows = ["| group | an operation has it when it is | codes |", "|---|---|---|"]
    for name, (codes, when) in GROUPS.items():
        rows.append(f"| `{name}` | {when} | " + ", ".join(f"`{c}`" for c in codes) + " |")
    return rows


def _replace_table(text: str, name: str, rows: list[str]) -> str:
    opening, closing = f"<!-- {name} -->", f"<!-- /{name} -->"
    before, rest = text.split(opening, 1)
    after = rest.split(closing, 1)[1]
    return before + opening + "\n" + "\n".join(rows) + "\n" + closing + after


def write(text: str, examples: dict[tuple[str, str], Example], document: dict[str, Any]) -> str:
    """docs/api.md with its examples, `Problems:` lines and tables made anew."""
    text = _replace_table(text, "codes", render_codes(text))
    text = _replace_table(text, "groups", render_groups())
    lines = text.splitlines()
    ops = operations(document)
    for section in reversed(sections(text)):
        key = (section.method, section.path)
        if key not in examples or key not in ops:
            raise DocError(f"{section.method} {section.path}: no such operation in the story or the document")
        rendered = render_example(examples[key], problems_line(document, ops[key]))
        if section.example_start is not None and section.example_end is not None:
            lines[section.example_start:section.example_end] = rendered
        else:  # a new section: the example goes at its end
            end = section.end
            while end > section.start + 1 and not lines[end - 1].strip():
                end -= 1
            lines[end:end] = ["", *rendered]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--write", action="store_true", help="rewrite the examples, Problems lines and tables of docs/api.md")
    args = parser.parse_args(argv)
    logging.disable(logging.INFO)
    with sample_app() as (client, clock):
        examples = tell(client, clock)
        document = client.app.openapi_schema.to_schema()
    if args.write:
        API_DOC.write_text(write(API_DOC.read_text(encoding="utf-8"), examples, document), encoding="utf-8")
        print(f"wrote {API_DOC.relative_to(ROOT)}: {len(examples)} examples")
        return 0
    ops = operations(document)
    for key, example in examples.items():
        print(f"### {key[0]} {key[1]}\n")
        print("\n".join(render_example(example, problems_line(document, ops[key]))) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
