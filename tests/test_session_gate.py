"""Every operation for a signed-in reader checks their session inside its own work.

The session cookie only names a reader; the database says whether that session still
stands (docs/engines.md, "The reader's session is a gate"). Here a session is ended after
its cookie was issued (signed out elsewhere, revoked, timed out) and every operation the
OpenAPI document marks as a reader's is called with that cookie and a body it would
accept: each must answer 401 and change nothing. The table of requests must cover every
such operation, so a new one cannot be added without being tried here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from tests.helpers import Reader, query

pytestmark = pytest.mark.both_engines

REQUESTS: dict[tuple[str, str], tuple[str, Any]] = {
    ("GET", "/api/me"): ("/api/me", None),
    ("DELETE", "/api/session"): ("/api/session", None),
    ("POST", "/api/account/claim"): ("/api/account/claim", {"email": "gate@example.com",
                                                            "password": "river lantern pocket moss"}),
    ("POST", "/api/account/password"): ("/api/account/password", {"current_password": "a long old password",
                                                                  "new_password": "a long new password here"}),
    ("GET", "/api/account/sessions"): ("/api/account/sessions", None),
    ("DELETE", "/api/account/sessions/{session_id}"): ("/api/account/sessions/some-session", None),
    ("DELETE", "/api/account"): ("/api/account", None),
    ("GET", "/api/settings"): ("/api/settings", None),
    ("PATCH", "/api/settings"): ("/api/settings", {"font": "serif"}),
    ("GET", "/api/skills"): ("/api/skills?q=lead", None),
    ("POST", "/api/skills"): ("/api/skills", {"name": "Beekeeping"}),
    ("GET", "/api/workbook"): ("/api/workbook", None),
    ("GET", "/api/workbook/next"): ("/api/workbook/next", None),
    ("GET", "/api/exercises/{full_exercise_id}"): ("/api/exercises/1.1.1.v1", None),
    ("PUT", "/api/exercises/{full_exercise_id}/response"): ("/api/exercises/1.1.1.v1/response",
                                                            {"response": {"text": "after sign-out"}}),
    ("GET", "/api/modules"): ("/api/modules", None),
    ("GET", "/api/tools"): ("/api/tools", None),
    ("GET", "/api/tools/{tool_type}/instances"): ("/api/tools/list-builder/instances", None),
    ("POST", "/api/tools/{tool_type}/instances"): ("/api/tools/list-builder/instances",
                                                   {"content": {"title": "x", "items": ["a"]}}),
    ("GET", "/api/tool-instances/{instance_id}"): ("/api/tool-instances/{entry}", None),
    ("PUT", "/api/tool-instances/{instance_id}"): ("/api/tool-instances/{entry}",
                                                   {"content": {"title": "changed", "items": ["b"]}}),
    ("DELETE", "/api/tool-instances/{instance_id}"): ("/api/tool-instances/{entry}", None),
    ("GET", "/api/daily-dos"): ("/api/daily-dos", None),
    ("GET", "/api/competencies/scores"): ("/api/competencies/scores", None),
    ("PUT", "/api/competencies/scores"): ("/api/competencies/scores",
                                          {"scores": [{"competency_id": "influencing", "score": 3}]}),
    ("GET", "/api/competencies/summary"): ("/api/competencies/summary", None),
    ("POST", "/api/export"): ("/api/export", None),
    ("POST", "/api/import"): ("/api/import", {"version": "1.1", "exported_at": "2026-01-01T00:00:00.000Z",
                                              "encrypted": False, "modules": {}, "tool_instances": []}),
}


def readers_operations(client: TestClient) -> set[tuple[str, str]]:
    """The operations whose 401 problem can be `invalid_session`."""
    document = client.get("/schema/openapi.json").json()
    schemas = document["components"]["schemas"]
    found = set()
    for path, item in document["paths"].items():
        for method, op in item.items():
            problem = op.get("responses", {}).get("401", {}).get("content", {}).get("application/problem+json")
            if problem and "invalid_session" in schemas[problem["schema"]["$ref"].rsplit("/", 1)[1]]["properties"][
                    "code"].get("enum", []):
                found.add((method.upper(), path))
    return found


def test_the_table_covers_every_operation_for_a_signed_in_reader(client: TestClient) -> None:
    assert readers_operations(client) == set(REQUESTS)


def fingerprint(db_path: Path) -> list[Any]:
    """Everything a request could have changed, as plain values."""
    tables = ["users", "sessions", "user_settings", "exercise_responses", "tool_instances", "exercise_skills",
              "user_competency_scores", "user_modules", "skills", "emails", "auth"]
    return [[tuple(row) for row in query(db_path, f"SELECT * FROM {table} ORDER BY 1")] for table in tables]


@pytest.mark.parametrize(("method", "template"), sorted(REQUESTS))
@pytest.mark.parametrize("how", ["signed_out_elsewhere", "timed_out"])
def test_an_ended_session_is_refused_by_every_operation_and_changes_nothing(
        full_seed: Path, new_reader, method: str, template: str, how: str) -> None:
    reader: Reader = new_reader()
    reader.start()
    assert reader.put("/api/exercises/1.1.1.v1/response", {"response": {"text": "mine"}}).status_code == 200
    entry = reader.post("/api/tools/list-builder/instances", {"content": {"title": "mine", "items": ["a"]}}).json()["id"]
    if how == "signed_out_elsewhere":
        query(full_seed, "DELETE FROM sessions")
    else:
        query(full_seed, "UPDATE sessions SET last_seen_at = '2000-01-01T00:00:00.000Z'")
    before = fingerprint(full_seed)
    path, body = REQUESTS[(method, template)]
    answer = reader.request(method, path.replace("{entry}", entry), json=body)
    assert answer.status_code == 401, answer.text
    assert answer.json()["code"] in ({"invalid_session"} if how == "signed_out_elsewhere" else {"session_expired"})
    after = fingerprint(full_seed)
    if how == "timed_out":
        # the expired session's row is deleted on the way out; nothing else moves
        assert after[1] == [] and [a for i, a in enumerate(after) if i != 1] == [b for i, b in enumerate(before)
                                                                             if i != 1]
    else:
        assert after == before
