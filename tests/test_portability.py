"""Export, import and merge: spec §9 shape, round trips, merge rules, refusals, login merge."""

from __future__ import annotations

import asyncio
import copy
import json
import sqlite3
from pathlib import Path
from typing import Any

import anyio
import pytest
from litestar.testing import TestClient

from app.config import Settings
from app.db import migrations
from app.db.connection import connect_sync, run_batch
from app.db.engine import Stmt
from app.domain import keys, portability, seeding, sessions
from app.domain.sessions import Principal, ServerKeys
from app.http.app import create_app
from tests.conftest import SMALL_SEED
from tests.helpers import PASSWORD, Reader, open_engine_on, query
from tests.test_engine import drive_with_interference
from tests.test_engine import principal as engine_principal

pytestmark = pytest.mark.both_engines

COUNT_TABLES = ("exercise_responses", "tool_instances", "user_competency_scores", "user_modules", "exercise_skills", "skills")


def counts(db_path: Path) -> dict[str, int]:
    conn = connect_sync(db_path, strict=False)
    try:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in COUNT_TABLES}
    finally:
        conn.close()


def answer(r: Reader, full_id: str, text: str, **extra) -> None:
    response = r.put(f"/api/exercises/{full_id}/response", {"response": {"text": text}, **extra})
    assert response.status_code == 200, response.text


def export(r: Reader, password: str | None = None) -> dict:
    response = r.post("/api/export", {"password": password} if password else None)
    assert response.status_code == 200, response.text
    assert response.headers["content-disposition"].startswith("attachment;")
    return response.json()


def do_import(r: Reader, document: dict, *, password: str | None = None, dry_run: bool = False):
    body = {"document": document}
    if password:
        body["password"] = password
    return r.post(f"/api/import?dry_run={'true' if dry_run else 'false'}", body)


@pytest.fixture
def ann(seeded, new_reader) -> Reader:
    r = new_reader()
    r.start()
    answer(r, "1.1.1.v1", "first answer", skills=["active-listening"])
    answer(r, "1.1.2.v1", "optional answer")
    return r


def comparable(document: dict) -> dict:
    """What must survive a round trip: everything but export time, row ids and account-keyed hashes."""
    doc = copy.deepcopy(document)
    for key in ("exported_at", "export_id", "key", "mac"):
        doc.pop(key, None)
    for module in doc["modules"].values():
        for exercise in module["exercises"].values():
            exercise.pop("id")
    for tool in doc["tool_instances"]:
        tool.pop("id")
        tool.pop("content_hash")
    return doc


def test_anonymous_export_is_plaintext_in_the_spec_shape(ann: Reader) -> None:
    doc = export(ann)
    assert doc["version"] == "1.1" and doc["encrypted"] is False
    assert set(doc) == {"version", "exported_at", "encrypted", "settings", "competency_scores", "modules",
                        "tool_instances", "custom_skills"}
    assert doc["settings"] == {"background_color": "cream", "text_color": "charcoal", "font": "system", "personality_type": None}
    module = doc["modules"]["1.1"]
    assert module["first_completed_at"] and module["last_modified_at"]
    exercise = module["exercises"]["1.1.1.v1"]
    assert exercise["response_json"] == {"text": "first answer"} and exercise["skills"] == ["active-listening"]
    text = json.dumps(doc)
    assert "dt_session" not in text and "password" not in text


def test_unfinished_modules_are_exported_with_null_completion(seeded, new_reader) -> None:
    r = new_reader()
    r.start()
    for full_id in ("1.1.1.v1", "1.1.2.v1", "1.2.1.v1"):
        answer(r, full_id, "x")
    module = export(r)["modules"]["1.2"]
    assert module["first_completed_at"] is None and module["last_modified_at"] is None
    assert list(module["exercises"]) == ["1.2.1.v1"]


def test_claimed_export_needs_the_password_and_carries_no_secrets(ann: Reader, db_path: Path) -> None:
    ann.claim("ann@example.com")
    assert ann.post("/api/export").status_code == 401
    assert ann.post("/api/export", {"password": "not my password at all"}).status_code == 401
    doc = export(ann, PASSWORD)
    assert doc["encrypted"] is True and doc["key"]["t"] == "export" and doc["mac"]
    stored = doc["modules"]["1.1"]["exercises"]["1.1.1.v1"]["response_json"]
    assert set(stored) == {"$enc", "k", "n", "c"}
    conn = connect_sync(db_path, strict=False)
    try:
        auth = conn.execute("SELECT password_hash, wrapped_data_key FROM auth").fetchone()
        session_ids = [r[0] for r in conn.execute("SELECT id FROM sessions")]
    finally:
        conn.close()
    text = json.dumps(doc)
    assert "ann@example.com" not in text and auth[0] not in text
    for slot in json.loads(auth[1])["keys"].values():
        for s in slot["slots"]:
            assert s["ct"] not in text
    assert not any(sid in text for sid in session_ids)
    assert "first answer" not in text


def test_round_trip_into_an_empty_account(ann: Reader, new_reader) -> None:
    original = export(ann)
    bob = new_reader()
    bob.start()
    report = do_import(bob, original).json()
    assert report["counts"]["exercises"]["inserted"] == 2 and report["warnings"] == []
    assert comparable(export(bob)) == comparable(original)


def test_import_twice_changes_nothing_the_second_time(ann: Reader, new_reader, db_path: Path) -> None:
    original = export(ann)
    bob = new_reader()
    bob.start()
    do_import(bob, original)
    before = counts(db_path)
    second = do_import(bob, original).json()
    assert counts(db_path) == before
    for kind, c in second["counts"].items():
        assert c["inserted"] == c["updated"] == 0, kind
    assert second["counts"]["exercises"]["unchanged"] == 2


def test_dry_run_reports_the_same_and_writes_nothing(ann: Reader, new_reader, db_path: Path) -> None:
    original = export(ann)
    bob = new_reader()
    bob.start()
    before = counts(db_path)
    dry = do_import(bob, original, dry_run=True).json()
    assert counts(db_path) == before and dry["dry_run"] is True
    real = do_import(bob, original).json()
    assert {k: v for k, v in dry.items() if k != "dry_run"} == {k: v for k, v in real.items() if k != "dry_run"}


def test_newer_answer_wins_both_ways(ann: Reader) -> None:
    old = export(ann)
    answer(ann, "1.1.1.v1", "edited later")
    report = do_import(ann, old).json()
    assert report["counts"]["exercises"]["unchanged"] == 2
    assert ann.get("/api/exercises/1.1.1.v1").json()["response"]["response"] == {"text": "edited later"}
    newer = copy.deepcopy(old)
    newer["modules"]["1.1"]["exercises"]["1.1.1.v1"]["response_json"] = {"text": "from the future"}
    newer["modules"]["1.1"]["exercises"]["1.1.1.v1"]["responded_at"] = "2099-01-01T00:00:00.000Z"
    report = do_import(ann, newer).json()
    assert report["counts"]["exercises"]["updated"] == 1
    assert ann.get("/api/exercises/1.1.1.v1").json()["response"]["response"] == {"text": "from the future"}


def test_id_collision_with_another_users_row_never_touches_it(ann: Reader, new_reader, db_path: Path) -> None:
    doc = export(ann)
    bob = new_reader()
    bob.start()
    do_import(bob, doc)
    conn = connect_sync(db_path, strict=False)
    try:
        owners = conn.execute("SELECT user_id, count(*) FROM exercise_responses GROUP BY user_id").fetchall()
    finally:
        conn.close()
    assert sorted(c for _, c in owners) == [2, 2]
    assert ann.get("/api/exercises/1.1.1.v1").json()["response"]["response"] == {"text": "first answer"}


def test_unknown_references_are_warnings_not_failures(ann: Reader, new_reader) -> None:
    doc = export(ann)
    doc["modules"]["9.9"] = {"first_completed_at": None, "last_modified_at": None,
                             "exercises": {"9.9.9.v1": {"response_json": {"text": "?"}, "responded_at": "2026-01-01T00:00:00Z"}}}
    doc["competency_scores"].append({"competency_id": "telepathy", "score": 3, "assessed_at": "2026-01-01T00:00:00Z"})
    doc["modules"]["1.1"]["exercises"]["1.1.1.v1"]["skills"].append("no-such-skill")
    bob = new_reader()
    bob.start()
    report = do_import(bob, doc).json()
    assert any("9.9.9.v1" in w for w in report["warnings"])
    assert any("telepathy" in w for w in report["warnings"])
    assert any("no-such-skill" in w for w in report["warnings"])
    assert report["counts"]["exercises"]["inserted"] == 2


def tool_entry(entry_id: str, tool_type: str, content: object) -> dict:
    return {"id": entry_id, "tool_type": tool_type, "origin": "standalone", "content_json": content,
            "created_at": "2026-01-02T10:00:00.000Z", "updated_at": "2026-01-02T10:00:00.000Z", "skills": []}


def test_tool_entries_keep_what_the_reader_wrote_and_skip_only_what_cannot_fit(ann: Reader, new_reader,
                                                                             db_path: Path) -> None:
    """Unknown fields are kept verbatim and a missing name becomes the tool's singular name
    (nothing the reader wrote is dropped); values the shape refuses skip the entry."""
    made = ann.post("/api/tools/list-builder/instances", {"content": {"title": "Kept", "items": ["a"]}})
    assert made.status_code == 201, made.text
    doc = export(ann)
    doc["tool_instances"] += [
        tool_entry("short-list", "list-builder", {"title": "Short"}),
        tool_entry("with-colour", "list-builder", {"title": "L", "colour": "red"}),
        tool_entry("too-much-energy", "flow-tracker", {"activity": "Run", "energy": 9}),
        tool_entry("no-title", "list-builder", {"items": ["untitled"]}),
        tool_entry("not-an-object", "flow-tracker", "ran a lot"),
    ]
    bob = new_reader()
    bob.start()
    dry = do_import(bob, doc, dry_run=True).json()
    before = counts(db_path)
    report = do_import(bob, doc).json()
    assert {k: v for k, v in dry.items() if k != "dry_run"} == {k: v for k, v in report.items() if k != "dry_run"}
    assert report["counts"]["tool_instances"] == {"inserted": 4, "updated": 0, "unchanged": 0, "skipped": 2}
    assert report["counts"]["exercises"]["inserted"] == 2  # the rest of the file still merges
    assert report["warnings"] == [
        "tool_instances: with-colour: fields this installation does not know (colour) were kept as they are",
        "tool_instances: too-much-energy skipped: flow-tracker content: Expected `int` <= 5 - at `$.energy`",
        "tool_instances: no-title: no title; it was named 'List'",
        "tool_instances: not-an-object skipped: flow-tracker content: Expected `object`, got `str`",
    ]
    assert counts(db_path)["tool_instances"] == before["tool_instances"] + 4
    shown = {e["content"]["title"]: e["content"] for e in bob.get("/api/tools/list-builder/instances").json()}
    assert shown == {"Kept": {"title": "Kept", "items": ["a"]}, "Short": {"title": "Short", "items": []},
                     "L": {"title": "L", "items": [], "colour": "red"}, "List": {"title": "List", "items": ["untitled"]}}
    assert bob.get("/api/tools/flow-tracker/instances").json() == []
    again = export(bob)
    assert {"title": "L", "items": [], "colour": "red"} in [t["content_json"] for t in again["tool_instances"]]


def test_custom_skills_are_matched_by_name_and_remapped(ann: Reader, new_reader, db_path: Path) -> None:
    doc = export(ann)
    doc["custom_skills"] = [{"id": "their-beekeeping-id", "name": "Beekeeping", "category": "knowledge"},
                            {"id": "their-listening-id", "name": "ACTIVE LISTENING", "category": "transferable"}]
    doc["modules"]["1.1"]["exercises"]["1.1.2.v1"]["skills"] = ["their-beekeeping-id", "their-listening-id"]
    bob = new_reader()
    bob.start()
    report = do_import(bob, doc).json()
    assert report["counts"]["custom_skills"] == {"inserted": 1, "updated": 0, "unchanged": 1, "skipped": 0}
    skills = bob.get("/api/exercises/1.1.2.v1").json()["response"]["skills"]
    assert "active-listening" in skills and len(skills) == 2
    assert do_import(bob, doc).json()["counts"]["custom_skills"]["inserted"] == 0


@pytest.mark.parametrize(
    ("mutate", "status", "code"),
    [
        (lambda d: d.update(version="2.0"), 422, "import_invalid"),
        (lambda d: d.update(exported_at="yesterday"), 422, "import_invalid"),
        (lambda d: d["competency_scores"].append({"competency_id": "analytical-thinking", "score": 6, "assessed_at": "2026-01-01T00:00:00Z"}), 422, "import_invalid"),
        (lambda d: d.update(surprise=True), 422, "import_invalid"),
        (lambda d: d["modules"]["1.1"]["exercises"]["1.1.1.v1"].update(responded_at="2026-13-45T00:00:00Z"), 422, "import_invalid"),
    ],
)
def test_bad_files_change_nothing(ann: Reader, db_path: Path, mutate, status: int, code: str) -> None:
    doc = export(ann)
    mutate(doc)
    before = counts(db_path)
    response = do_import(ann, doc)
    assert response.status_code == status and response.json()["code"] == code, response.text
    assert counts(db_path) == before


@pytest.mark.parametrize("cost", [(1024 * 1024, 10, 8), (262144, 3, 4), (131072, 3, 8)], ids=str)
def test_a_file_key_at_a_cost_we_never_write_is_refused_without_hashing(
    ann: Reader, new_reader, db_path: Path, monkeypatch: pytest.MonkeyPatch, cost: tuple[int, int, int]
) -> None:
    from app.domain import keys

    ann.claim("ann@example.com")
    doc = export(ann, PASSWORD)
    doc["key"]["kdf"].update(m=cost[0], t=cost[1], p=cost[2])
    hashed: list[int] = []
    real = keys.hash_secret_raw
    monkeypatch.setattr(keys, "hash_secret_raw", lambda *a, **kw: hashed.append(1) or real(*a, **kw))
    bob = new_reader()
    bob.start()
    before = counts(db_path)
    refused = do_import(bob, doc, password=PASSWORD)
    assert refused.status_code == 422 and refused.json()["code"] == "import_kdf_unsupported", refused.text
    assert "never writes" in refused.json()["detail"]
    assert hashed == [] and counts(db_path) == before


def test_deep_nesting_and_invalid_json_are_refused(ann: Reader, db_path: Path) -> None:
    doc = export(ann)
    deep: dict = {}
    node = deep
    for _ in range(40):
        node["x"] = {}
        node = node["x"]
    doc["modules"]["1.1"]["exercises"]["1.1.1.v1"]["response_json"] = deep
    assert do_import(ann, doc).status_code == 422
    raw = ann.request("POST", "/api/import", content=b'{"document": {"version": "1.1",', headers={"content-type": "application/json"})
    assert raw.status_code == 400


def test_oversized_import_is_413(ann: Reader) -> None:
    big = ann.request("POST", "/api/import", content=b'{"document": "' + b"x" * (18 * 1024 * 1024) + b'"}',
                      headers={"content-type": "application/json"})
    assert big.status_code == 413


def test_tampered_or_wrong_password_claimed_file(ann: Reader, new_reader, db_path: Path) -> None:
    ann.claim("ann@example.com")
    doc = export(ann, PASSWORD)
    bob = new_reader()
    bob.start()
    before = counts(db_path)
    assert do_import(bob, doc).status_code == 401
    assert do_import(bob, doc, password="not the right password").status_code == 401
    tampered = copy.deepcopy(doc)
    tampered["competency_scores"].append({"competency_id": "analytical-thinking", "score": 5, "assessed_at": "2026-01-01T00:00:00.000Z"})
    bad = do_import(bob, tampered, password=PASSWORD)
    assert bad.status_code == 422 and "MAC" in bad.json()["detail"]
    assert counts(db_path) == before
    good = do_import(bob, doc, password=PASSWORD)
    assert good.status_code == 200 and good.json()["counts"]["exercises"]["inserted"] == 2
    assert bob.get("/api/exercises/1.1.1.v1").json()["response"]["response"] == {"text": "first answer"}


def test_claimed_export_opens_on_another_installation_with_only_the_password(ann: Reader, tmp_path: Path) -> None:
    ann.claim("ann@example.com")
    doc = export(ann, PASSWORD)
    other = tmp_path / "elsewhere" / "dreamtree.db"
    other.parent.mkdir()
    conn = connect_sync(other)
    try:
        migrations.apply(conn)
        seeding.seed(conn, directory=SMALL_SEED)
    finally:
        conn.close()
    settings = Settings(db_path=other, secure_cookies=True, argon2="fast")  # its own server secret
    with TestClient(create_app(settings), base_url="https://testserver.local") as client:
        stranger = Reader(client)
        stranger.start()
        report = do_import(stranger, doc, password=PASSWORD).json()
        assert report["counts"]["exercises"]["inserted"] == 2
        shown = stranger.get("/api/exercises/1.1.1.v1").json()["response"]
        assert shown["response"] == {"text": "first answer"} and shown["skills"] == ["active-listening"]


def test_login_merges_the_anonymous_workbook(seeded, new_reader, db_path: Path) -> None:
    owner = new_reader()
    owner.start()
    answer(owner, "1.1.1.v1", "answered on the laptop")
    owner.claim("ann@example.com")
    phone = new_reader()
    anonymous = phone.start()
    answer(phone, "1.1.1.v1", "answered on the phone, later")
    answer(phone, "1.1.2.v1", "only on the phone")
    response = phone.login("ann@example.com", merge_anonymous=True)
    assert response.status_code == 200, response.text
    merge = response.json()["merge"]
    assert merge["counts"]["exercises"] == {"inserted": 1, "updated": 1, "unchanged": 0, "skipped": 0}
    assert phone.get("/api/exercises/1.1.2.v1").json()["response"]["response"] == {"text": "only on the phone"}
    assert owner.get("/api/exercises/1.1.1.v1").json()["response"]["response"] == {"text": "answered on the phone, later"}
    conn = connect_sync(db_path, strict=False)
    try:
        assert conn.execute("SELECT count(*) FROM users WHERE id = ?", (anonymous["id"],)).fetchone()[0] == 0
    finally:
        conn.close()


def test_export_is_only_the_callers(ann: Reader, new_reader) -> None:
    bob = new_reader()
    bob.start()
    answer(bob, "1.1.1.v1", "bob's")
    doc = export(bob)
    assert json.dumps(doc).count("first answer") == 0
    assert list(doc["modules"]["1.1"]["exercises"]) == ["1.1.1.v1"]


def test_json_schema_is_published(client: TestClient) -> None:
    from app.domain.portability import json_schema

    schema = json_schema()
    assert "ExportDoc" in json.dumps(schema)
    published = Path(__file__).resolve().parents[1] / "docs" / "export-format.schema.json"
    assert json.loads(published.read_text()) == schema, "run: dreamtree export-schema > docs/export-format.schema.json"




# --- one reader can never reach another reader's rows ----------------------------------------------


def tags_of_row(db_path: Path, row_id: str) -> list[str]:
    return sorted(r[0] for r in query(db_path, "SELECT skill_id FROM exercise_skills WHERE exercise_instance_id = ?",
                                      (row_id,)))


def owner_of(db_path: Path, row_id: str) -> list[str]:
    return [r[0] for r in query(db_path, "SELECT user_id FROM exercise_responses WHERE id = ?1 "
                                         "UNION ALL SELECT user_id FROM tool_instances WHERE id = ?1", (row_id,))]


def test_a_tool_id_that_is_another_readers_answer_id_never_touches_their_tags(ann: Reader, new_reader,
                                                                            db_path: Path) -> None:
    anns_answer = export(ann)["modules"]["1.1"]["exercises"]["1.1.1.v1"]["id"]  # ids travel in clear
    assert tags_of_row(db_path, anns_answer) == ["active-listening"]
    mallory = new_reader()
    mallory.start()
    doc = export(mallory)
    doc["tool_instances"] = [{**tool_entry(anns_answer, "list-builder", {"title": "Mine"}), "skills": ["composure"]}]
    report = do_import(mallory, doc)
    assert report.status_code == 200 and report.json()["counts"]["tool_instances"]["inserted"] == 1
    assert tags_of_row(db_path, anns_answer) == ["active-listening"]
    assert owner_of(db_path, anns_answer) == [ann.get("/api/me").json()["id"]]
    [entry] = mallory.get("/api/tools/list-builder/instances").json()
    assert entry["id"] != anns_answer and entry["skills"] == ["composure"]
    assert ann.get("/api/exercises/1.1.1.v1").json()["response"]["skills"] == ["active-listening"]


def test_an_answer_id_that_is_another_readers_tool_id_never_touches_their_tags(ann: Reader, new_reader,
                                                                             db_path: Path) -> None:
    made = ann.post("/api/tools/list-builder/instances", {"content": {"title": "Ann's"}, "skills": ["composure"]})
    assert made.status_code == 201, made.text
    anns_tool = made.json()["id"]
    mallory = new_reader()
    mallory.start()
    doc = export(mallory)
    doc["modules"]["1.1"] = {"first_completed_at": None, "last_modified_at": None, "exercises": {
        "1.1.1.v1": {"id": anns_tool, "response_json": {"text": "mine"}, "responded_at": "2026-01-01T00:00:00Z",
                     "skills": ["active-listening"]}}}
    assert do_import(mallory, doc).json()["counts"]["exercises"]["inserted"] == 1
    assert tags_of_row(db_path, anns_tool) == ["composure"]
    assert owner_of(db_path, anns_tool) == [ann.get("/api/me").json()["id"]]
    mine = mallory.get("/api/exercises/1.1.1.v1").json()["response"]
    assert mine["response"] == {"text": "mine"} and mine["skills"] == ["active-listening"]
    assert ann.get(f"/api/tool-instances/{anns_tool}").json()["skills"] == ["composure"]


def test_ids_within_one_file_never_collide(seeded, new_reader, db_path: Path) -> None:
    r = new_reader()
    r.start()
    doc = export(r)
    doc["modules"]["1.1"] = {"first_completed_at": None, "last_modified_at": None, "exercises": {
        "1.1.1.v1": {"id": "same-id", "response_json": {"text": "a"}, "responded_at": "2026-01-01T00:00:00Z"}}}
    doc["tool_instances"] = [tool_entry("same-id", "list-builder", {"title": "x"})]
    assert do_import(r, doc).status_code == 200
    assert len(query(db_path, "SELECT id FROM exercise_responses UNION ALL SELECT id FROM tool_instances")) == 2


# --- import obeys the API's limits and rules ------------------------------------------------------


def many_tools(n: int, tool_type: str = "list-builder", prefix: str = "t") -> list[dict]:
    return [tool_entry(f"{prefix}{i}", tool_type, {"title": f"{prefix} {i}"}) for i in range(n)]


def test_a_file_over_the_tool_entry_limit_is_refused_whole(seeded, new_reader, db_path: Path) -> None:
    r = new_reader()
    r.start()
    doc = export(r)
    doc["tool_instances"] = many_tools(1500)
    before = counts(db_path)
    refused = do_import(r, doc)
    assert refused.status_code == 422 and refused.json()["code"] == "import_over_limit", refused.text
    assert "1500" in refused.json()["detail"] and "1000" in refused.json()["detail"]
    assert counts(db_path) == before


def test_the_tool_entry_limit_counts_what_the_reader_already_has(seeded, new_reader, db_path: Path) -> None:
    r = new_reader()
    r.start()
    doc = export(r)
    doc["tool_instances"] = many_tools(995)
    assert do_import(r, doc).json()["counts"]["tool_instances"]["inserted"] == 995
    doc["tool_instances"] = many_tools(10, prefix="more")
    before = counts(db_path)
    refused = do_import(r, doc)
    assert refused.status_code == 422 and refused.json()["code"] == "import_over_limit"
    assert "1005" in refused.json()["detail"]
    assert counts(db_path) == before
    doc["tool_instances"] = many_tools(5, prefix="more")
    assert do_import(r, doc).json()["counts"]["tool_instances"]["inserted"] == 5


def test_a_file_with_more_custom_skills_than_allowed_is_refused_whole(seeded, new_reader, db_path: Path) -> None:
    r = new_reader()
    r.start()
    doc = export(r)
    doc["custom_skills"] = [{"id": f"s{i}", "name": f"Made-up skill {i}", "category": None} for i in range(1000)]
    before = counts(db_path)
    refused = do_import(r, doc)
    assert refused.status_code == 422 and refused.json()["code"] == "import_over_limit", refused.text
    assert counts(db_path) == before
    assert query(db_path, "SELECT count(*) FROM skills WHERE review_status = 'pending'")[0][0] == 0
    doc["custom_skills"] = doc["custom_skills"][:200]
    assert do_import(r, doc).json()["counts"]["custom_skills"]["inserted"] == 200


def test_custom_skill_names_follow_the_apis_rules(seeded, new_reader) -> None:
    r = new_reader()
    r.start()
    doc = export(r)
    doc["custom_skills"] = [{"id": "ok", "name": "  Bee   keeping ", "category": "knowledge"},
                            {"id": "long", "name": "x" * 81, "category": None},
                            {"id": "ctl", "name": "bell\u0007", "category": None}]
    report = do_import(r, doc).json()
    assert report["counts"]["custom_skills"] == {"inserted": 1, "updated": 0, "unchanged": 0, "skipped": 2}
    assert "Bee keeping" in [s["name"] for s in r.get("/api/skills?q=keeping").json()]


def test_an_origin_the_api_refuses_is_not_stored(ann: Reader, new_reader) -> None:
    doc = export(ann)
    doc["tool_instances"] = [{**tool_entry("a", "list-builder", {"title": "From 1.1.1"}), "origin": "1.1.1.v1"},
                             {**tool_entry("b", "list-builder", {"title": "From 1.2.1"}), "origin": "1.2.1.v1"},
                             {**tool_entry("c", "list-builder", {"title": "Odd"}), "origin": "../etc/passwd"}]
    bob = new_reader()
    bob.start()
    report = do_import(bob, doc).json()
    assert report["counts"]["tool_instances"]["inserted"] == 3
    origins = {e["content"]["title"]: e["origin"] for e in bob.get("/api/tools/list-builder/instances").json()}
    assert origins == {"From 1.1.1": "1.1.1.v1", "From 1.2.1": "standalone", "Odd": "standalone"}
    assert sum("kept as standalone" in w for w in report["warnings"]) == 2


def test_an_answer_over_the_apis_cap_refuses_the_file(ann: Reader, new_reader, db_path: Path) -> None:
    doc = export(ann)
    doc["modules"]["1.1"]["exercises"]["1.1.2.v1"]["response_json"] = {"text": "x" * 70_000}
    bob = new_reader()
    bob.start()
    before = counts(db_path)
    refused = do_import(bob, doc)
    assert refused.status_code == 422 and refused.json()["code"] == "response_too_large"
    assert "1.1.2.v1" in refused.json()["detail"]
    assert counts(db_path) == before


# --- no request answers 500 ------------------------------------------------------------------------

COLLIDING = '{"\u00e9": 1, "e\u0301": 2}'  # precomposed, then e + combining acute: one key in NFC


def test_keys_that_collide_after_nfc_are_refused_by_the_answer_api(ann: Reader) -> None:
    response = ann.request("PUT", "/api/exercises/1.1.2.v1/response", content=f'{{"response": {COLLIDING}}}'.encode(),
                           headers={"content-type": "application/json"})
    assert response.status_code == 422 and "NFC" in response.json()["detail"], response.text


def test_keys_that_collide_after_nfc_are_refused_by_import(ann: Reader, new_reader, db_path: Path) -> None:
    text = json.dumps(export(ann)).replace('{"text": "optional answer"}', COLLIDING)
    assert COLLIDING in text
    bob = new_reader()
    bob.start()
    before = counts(db_path)
    refused = bob.request("POST", "/api/import", content=text.encode(), headers={"content-type": "application/json"})
    assert refused.status_code == 422 and refused.json()["code"] == "import_invalid", refused.text
    assert counts(db_path) == before


def test_an_imported_answer_over_one_mebibyte_is_refused(ann: Reader, new_reader) -> None:
    doc = export(ann)
    doc["modules"]["1.1"]["exercises"]["1.1.2.v1"]["response_json"] = {"text": "y" * (1024 * 1024 + 10)}
    bob = new_reader()
    bob.start()
    refused = do_import(bob, doc)
    assert refused.status_code == 422 and refused.json()["code"] == "response_too_large", refused.text


@pytest.mark.parametrize("exercise_id", ["1.1.1.vabc", "1.1.1.v99999999999999999999", "1.1.1.v1\n", "1.1.1"])
def test_malformed_exercise_ids_are_refused(ann: Reader, exercise_id: str) -> None:
    doc = export(ann)
    doc["modules"]["1.1"]["exercises"][exercise_id] = {"response_json": {"text": "?"}, "responded_at": "2026-01-01T00:00:00Z"}
    refused = do_import(ann, doc)
    assert refused.status_code == 422 and refused.json()["code"] == "import_invalid", refused.text


@pytest.mark.parametrize("stamp", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
def test_timestamps_outside_utcs_years_are_refused(ann: Reader, stamp: str) -> None:
    doc = export(ann)
    doc["modules"]["1.1"]["exercises"]["1.1.1.v1"]["responded_at"] = stamp
    refused = do_import(ann, doc)
    assert refused.status_code == 422 and refused.json()["code"] == "import_invalid", refused.text
    doc = export(ann)
    doc["exported_at"] = stamp
    assert do_import(ann, doc).status_code == 422


@pytest.mark.parametrize("export_id", ["a.b", "a$b", "x" * 65, ""])
def test_malformed_export_ids_are_refused(ann: Reader, export_id: str) -> None:
    ann.claim("ann@example.com")
    doc = export(ann, PASSWORD)
    doc["export_id"] = export_id
    refused = do_import(ann, doc, password=PASSWORD)
    assert refused.status_code == 422 and refused.json()["code"] == "import_invalid", refused.text


# --- files of the original DreamTree app: nothing a reader wrote is lost -------------------------------


def spec_example() -> dict:
    """Spec §9's example, verbatim from docs/spec/dreamtree-schema.md."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "spec" / "dreamtree-schema.md").read_text(encoding="utf-8")
    section = text[text.index("## 9. JSON Export Structure"):]
    return json.loads(section[section.index("```json") + len("```json"):section.index("```", section.index("```json") + 7)])


def test_the_spec_example_imports_without_losing_anything_the_reader_wrote(full_seed, new_reader, db_path: Path) -> None:
    original = spec_example()
    r = new_reader()
    r.start()
    response = do_import(r, original)
    assert response.status_code == 200, response.text
    report = response.json()
    warnings = "\n".join(report["warnings"])
    assert "1.1.1.v2 does not exist here; the answer was kept as the answer to 1.1.1.v1" in warnings
    assert "1.1 is not complete here" in warnings
    assert "fields this installation does not know (outcome)" in warnings
    assert "no title; it was named 'SOARED Story'" in warnings
    assert report["counts"]["exercises"]["inserted"] == 1 and report["counts"]["tool_instances"]["inserted"] == 1
    assert r.get("/api/modules").json() == []  # 1.1 has three required exercises; one is answered

    again = export(r)
    assert again["settings"] == original["settings"]
    assert again["competency_scores"] == [{"competency_id": "analytical-thinking", "score": 4,
                                           "assessed_at": "2024-01-12T14:00:00.000Z"}]
    [answer] = again["modules"]["1.1"]["exercises"].values()
    assert answer["response_json"] == {"answer": "..."} and answer["responded_at"] == "2024-01-10T14:22:00.000Z"
    [story] = again["tool_instances"]
    assert story["tool_type"] == "soared-story"
    assert story["content_json"]["situation"] == "..." and story["content_json"]["outcome"] == "..."
    assert story["content_json"]["title"] == "SOARED Story"
    assert story["created_at"] == "2024-01-11T16:00:00.000Z" and story["updated_at"] == "2024-01-11T16:30:00.000Z"
    assert [s["name"] for s in again["custom_skills"]] == ["Beekeeping"]
    # the same file again changes nothing
    before = counts(db_path)
    second = do_import(r, original).json()
    assert counts(db_path) == before
    assert all(c["inserted"] == c["updated"] == 0 for c in second["counts"].values()), second


def test_kept_fields_are_shown_and_survive_an_edit(full_seed, new_reader) -> None:
    r = new_reader()
    r.start()
    do_import(r, spec_example())
    [story] = r.get("/api/tools/soared-story/instances").json()
    assert story["content"]["outcome"] == "..."
    edited = r.put(f"/api/tool-instances/{story['id']}", {"content": {"title": "Saved the launch", "situation": "late"}})
    assert edited.status_code == 200, edited.text
    assert edited.json()["content"]["outcome"] == "..." and edited.json()["content"]["title"] == "Saved the launch"
    [again] = export(r)["tool_instances"]
    assert again["content_json"]["outcome"] == "..."


def small_module(first: str | None, **exercises: object) -> dict:
    return {"first_completed_at": first, "last_modified_at": first, "exercises": {
        full_id.replace("_", "."): {"response_json": value, "responded_at": "2026-02-01T10:00:00Z"}
        for full_id, value in exercises.items()}}


def test_a_module_row_is_written_only_when_the_module_is_complete_after_the_merge(seeded, new_reader) -> None:
    r = new_reader()
    r.start()
    doc = export(r)
    doc["modules"] = {"1.2": small_module("2026-02-01T10:00:00Z", **{"1_2_1_v1": {"text": "flow"}})}
    report = do_import(r, doc).json()
    assert any("1.2 is not complete here (1 required exercise(s)" in w for w in report["warnings"])
    assert report["counts"]["modules"]["skipped"] == 1 and r.get("/api/modules").json() == []
    doc["modules"] = {"1.2": small_module("2026-01-15T09:00:00Z", **{"1_2_2_v1": {"text": "more of this"}})}
    report = do_import(r, doc).json()
    assert report["counts"]["modules"] == {"inserted": 1, "updated": 0, "unchanged": 0, "skipped": 0}
    [module] = r.get("/api/modules").json()
    assert module["module_id"] == "1.2" and module["first_completed_at"] == "2026-01-15T09:00:00.000Z"


def test_a_module_completed_by_imported_answers_starts_at_its_latest_answer(seeded, new_reader) -> None:
    r = new_reader()
    r.start()
    doc = export(r)
    doc["modules"] = {"1.1": small_module(None, **{"1_1_1_v1": {"text": "done"}})}
    assert do_import(r, doc).json()["counts"]["modules"]["inserted"] == 1
    [module] = r.get("/api/modules").json()
    assert module["first_completed_at"] == module["last_modified_at"] == "2026-02-01T10:00:00.000Z"


@pytest.mark.parametrize("empty", ["", "   ", {}, {"answer": ""}, [], None])
def test_an_empty_answer_to_a_required_exercise_never_completes_a_module_through_import(seeded, new_reader,
                                                                                        empty: object) -> None:
    r = new_reader()
    r.start()
    doc = export(r)
    doc["modules"] = {"1.1": small_module("2026-02-01T10:00:00Z", **{"1_1_1_v1": empty, "1_1_2_v1": ""})}
    report = do_import(r, doc).json()
    assert report["counts"]["exercises"] == {"inserted": 1, "updated": 0, "unchanged": 0, "skipped": 1}
    assert any("1.1.1.v1: an empty answer to a required exercise was not kept" in w for w in report["warnings"])
    assert r.get("/api/modules").json() == []
    assert r.get("/api/exercises/1.1.1.v1").json()["response"] is None
    assert r.get("/api/exercises/1.1.2.v1").json()["response"]["response"] == ""  # optional: any answer counts


# --- moving one's data ---------------------------------------------------------------------------


def test_the_downloaded_file_uploads_as_it_is(ann: Reader, new_reader) -> None:
    ann.claim("ann@example.com")
    raw = ann.post("/api/export", {"password": PASSWORD})
    bob = new_reader()
    bob.start()
    refused = bob.request("POST", "/api/import", content=raw.content, headers={"content-type": "application/json"})
    assert refused.status_code == 401 and refused.json()["code"] == "invalid_credentials"
    checked = bob.request("POST", "/api/import?dry_run=true", content=raw.content,
                          headers={"content-type": "application/json", "x-export-password": PASSWORD})
    assert checked.status_code == 200 and checked.json()["dry_run"] is True
    done = bob.request("POST", "/api/import", content=raw.content,
                       headers={"content-type": "application/json", "x-export-password": PASSWORD})
    assert done.status_code == 200 and done.json()["counts"]["exercises"]["inserted"] == 2
    assert bob.get("/api/exercises/1.1.1.v1").json()["response"]["response"] == {"text": "first answer"}


def test_a_file_with_default_settings_never_replaces_settings_the_reader_chose(ann: Reader, new_reader) -> None:
    """A file's settings are dated by when it was exported, not when they were chosen: ones
    that are exactly the defaults say nothing was chosen, however new the file."""
    bob = new_reader()
    bob.start()
    assert bob.patch("/api/settings", {"font": "serif", "background_color": "night"}).status_code == 200
    untouched = ann.post("/api/export").json()  # ann never touched her settings: the defaults
    report = bob.post("/api/import", untouched).json()
    assert report["counts"]["settings"] == {"inserted": 0, "updated": 0, "unchanged": 1, "skipped": 0}
    assert bob.get("/api/settings").json()["font"] == "serif"
    chosen = {**untouched, "settings": {**untouched["settings"], "font": "mono"}}
    assert bob.post("/api/import", chosen).json()["counts"]["settings"]["updated"] == 1
    assert bob.get("/api/settings").json()["font"] == "mono"


def test_a_saved_account_can_download_a_readable_copy(ann: Reader, new_reader) -> None:
    ann.claim("ann@example.com")
    missing = ann.post("/api/export?readable=true")
    assert missing.status_code == 401 and missing.json()["code"] == "password_required"
    wrong = ann.post("/api/export?readable=true", {"password": "not my password at all"})
    assert wrong.status_code == 401 and wrong.json()["code"] == "invalid_credentials"
    readable = ann.post("/api/export?readable=true", {"password": PASSWORD})
    assert readable.status_code == 200
    assert "unencrypted" in readable.headers["content-disposition"]
    doc = readable.json()
    assert doc["encrypted"] is False and not {"key", "mac", "export_id"} & set(doc)
    assert doc["modules"]["1.1"]["exercises"]["1.1.1.v1"]["response_json"] == {"text": "first answer"}
    encrypted = ann.post("/api/export", {"password": PASSWORD})
    assert "unencrypted" not in encrypted.headers["content-disposition"] and encrypted.json()["encrypted"] is True
    bob = new_reader()
    bob.start()
    assert do_import(bob, doc).json()["counts"]["exercises"]["inserted"] == 2


def test_a_saved_account_exporting_without_a_password_is_told_so(ann: Reader) -> None:
    ann.claim("ann@example.com")
    for body in (None, {}, {"password": ""}):
        refused = ann.post("/api/export", body)
        assert refused.status_code == 401 and refused.json()["code"] == "password_required", refused.text
        assert refused.json()["title"] == "Password required"
    assert ann.get("/api/me").status_code == 200  # still signed in


def test_an_anonymous_export_is_named_as_unencrypted(ann: Reader) -> None:
    response = ann.post("/api/export")
    assert response.headers["content-disposition"].endswith('-unencrypted.json"')


# --- the engine seam: one read batch, one guarded write batch --------------------------------------

MERGE = "app.domain.portability.merge"


def test_export_is_one_read_batch_and_an_import_one_read_and_one_write(ann: Reader, new_reader, db_jobs) -> None:
    db_jobs.clear()
    doc = export(ann)
    assert db_jobs.mine() == [("read", "app.domain.portability.export")]
    bob = new_reader()
    bob.start()
    for dry_run, expected in ((True, [("read", MERGE)]), (False, [("read", MERGE), ("write", MERGE)]),
                              (False, [("read", MERGE)])):  # the same file again: nothing to write
        db_jobs.clear()
        assert do_import(bob, doc, dry_run=dry_run).status_code == 200
        assert db_jobs.mine() == expected
    ann.claim("ann@example.com")
    db_jobs.clear()
    export(ann, PASSWORD)
    assert db_jobs.mine() == [("read", "app.domain.portability.export")]


def test_the_sign_in_merge_is_one_read_and_one_write(seeded, new_reader, db_jobs) -> None:
    owner = new_reader()
    owner.start()
    owner.claim("ann@example.com")
    phone = new_reader()
    phone.start()
    answer(phone, "1.1.1.v1", "on the phone")
    db_jobs.clear()
    assert phone.login("ann@example.com", merge_anonymous=True).status_code == 200
    assert [job for job in db_jobs.mine() if job[1] == MERGE] == [("read", MERGE), ("write", MERGE)]


def test_two_imports_of_one_file_at_once_leave_one_copy(seeded: Path) -> None:
    document = {"version": "1.1", "exported_at": "2026-06-01T00:00:00Z",
                "modules": {"1.1": small_module(None, **{"1_1_1_v1": {"text": "once"}})},
                "tool_instances": many_tools(30), "custom_skills": [{"id": "bees", "name": "Beekeeping"}]}

    async def scenario() -> list[portability.ImportReport]:
        db = await open_engine_on(seeded)
        try:
            reader, _ = await sessions.start_anonymous(db, ServerKeys.derive(b"k" * 32))
            return list(await asyncio.gather(*(
                portability.import_document(db, reader, document, password=None, dry_run=False) for _ in range(3))))
        finally:
            await db.close()

    reports = anyio.run(scenario)
    assert sorted(r.counts.tool_instances.inserted for r in reports) == [0, 0, 30]
    assert counts(seeded)["tool_instances"] == 30 and counts(seeded)["exercise_responses"] == 1
    assert query(seeded, "SELECT count(*) FROM skills WHERE name = 'Beekeeping'")[0][0] == 1


def test_large_files_are_written_in_chunks(seeded, new_reader, monkeypatch: pytest.MonkeyPatch, db_path: Path) -> None:
    from app.domain.portability.merge import context

    monkeypatch.setattr(context, "CHUNK_BYTES", 2_000)  # a handful of rows per statement
    r = new_reader()
    r.start()
    doc = export(r)
    doc["tool_instances"] = [{**t, "skills": ["composure", "bookkeeping"]} for t in many_tools(60)]
    doc["custom_skills"] = [{"id": f"s{i}", "name": f"Skill number {i}"} for i in range(40)]
    report = do_import(r, doc).json()
    assert report["counts"]["tool_instances"]["inserted"] == 60 and report["counts"]["custom_skills"]["inserted"] == 40
    assert counts(db_path)["exercise_skills"] == 120
    assert do_import(r, doc).json()["counts"]["tool_instances"]["unchanged"] == 60


# Each guard of the merge's write batch, proven by a change made between its read and its write
# (tests/test_engine.py::drive_with_interference runs the two batches like the d1 engine).

STAMP = "2026-03-08T07:30:00.000Z"
LATER = "2026-05-01T00:00:00.000Z"


def file_with(**parts: object) -> dict:
    return {"version": "1.1", "exported_at": LATER, **parts}


def merge_of(reader: Principal, document: dict) -> Any:
    from app.domain.portability.incoming import open_file
    from app.domain.portability.merge import merge_work

    book = open_file(portability.decode_document(document), document, None)
    return merge_work(reader.user_id, reader.dek, STAMP, book, dry_run=False)


def insert_answer(c: sqlite3.Connection, row_id: str, user: str, exercise: str = "1", at: str = STAMP,
                  sealed: str = "{}") -> None:
    run_batch(c, [Stmt("INSERT INTO exercise_responses (id, user_id, part_id, module_id, exercise_id, version,"
                       " full_exercise_id, response_json, responded_at) VALUES (?, ?, '1', '1', ?, 1, ?, ?, ?)",
                       (row_id, user, exercise, f"1.1.{exercise}.v1", sealed, at))], True)


def insert_tool(c: sqlite3.Connection, row_id: str, user: str, content_hash: str, at: str = STAMP) -> None:
    run_batch(c, [Stmt("INSERT INTO tool_instances (id, user_id, tool_type, origin, content_json, content_hash,"
                       " created_at, updated_at) VALUES (?, ?, 'list-builder', 'standalone', '{}', ?, ?, ?)",
                       (row_id, user, content_hash, at, at))], True)


def run_sql(c: sqlite3.Connection, sql: str, *params: object) -> None:
    run_batch(c, [Stmt(sql, params)], True)


ONE_ANSWER = {"1.1": small_module(None, **{"1_1_1_v1": {"text": "from the file"}})}
SETTINGS_DEFAULTS = ("INSERT INTO user_settings (user_id, created_at, updated_at) VALUES (?, ?, ?)")


def _guard_cases() -> list[Any]:
    def case(name: str, document: Any, meanwhile: Any, setup: Any = None) -> Any:
        return pytest.param(document, setup, meanwhile, name, id=name)

    listed = {"title": "Same list", "items": []}
    return [
        case("answer_changed", lambda r: file_with(modules=ONE_ANSWER),
             lambda c, r: insert_answer(c, "other-tab", r.user_id)),
        case("answer_changed", lambda r: file_with(modules={"1.1": {**ONE_ANSWER["1.1"], "exercises": {
            "1.1.1.v1": {"response_json": {"text": "newer"}, "responded_at": LATER}}}}),
             lambda c, r: run_sql(c, "UPDATE exercise_responses SET responded_at = ? WHERE id = 'mine'", LATER),
             lambda c, r: insert_answer(c, "mine", r.user_id)),
        case("answer_changed", lambda r: file_with(modules={"1.1": {**ONE_ANSWER["1.1"], "exercises": {
            "1.1.1.v1": {"id": "wanted-id", "response_json": {"text": "x"}, "responded_at": LATER}}}}),
             lambda c, r: (run_sql(c, "INSERT INTO users (id, created_at, updated_at) VALUES ('someone', ?, ?)",
                                   STAMP, STAMP), insert_tool(c, "wanted-id", "someone", "h"))),
        case("tool_changed", lambda r: file_with(tool_instances=[tool_entry("t1", "list-builder", listed)]),
             lambda c, r: insert_tool(c, "same-content", r.user_id,
                                      keys.content_hash(r.dek, {"title": "Same list", "items": []}))),
        case("tool_instance_limit", lambda r: file_with(tool_instances=[tool_entry("t1", "list-builder", listed)]),
             lambda c, r: insert_tool(c, "the-thousandth", r.user_id, "h999"),
             lambda c, r: [insert_tool(c, f"t-{i}", r.user_id, f"h{i}") for i in range(999)]),
        case("custom_skill_limit", lambda r: file_with(custom_skills=[{"id": "new", "name": "Beekeeping"}]),
             lambda c, r: run_sql(c, "INSERT INTO skills (id, name, is_custom, created_by, review_status, created_at)"
                                     " VALUES ('one-more', 'Late skill', 1, ?, 'pending', ?)", r.user_id, STAMP),
             lambda c, r: [run_sql(c, "INSERT INTO skills (id, name, is_custom, created_by, review_status, created_at)"
                                      " VALUES (?, ?, 1, ?, 'pending', ?)", f"own-{i}", f"Own {i}", r.user_id, STAMP)
                           for i in range(199)]),
        case("skill_taken", lambda r: file_with(custom_skills=[{"id": "new", "name": "Beekeeping"}]),
             lambda c, r: run_sql(c, "INSERT INTO skills (id, name, is_custom, created_by, review_status, created_at)"
                                     " VALUES ('typed-meanwhile', 'beekeeping', 1, ?, 'pending', ?)", r.user_id, STAMP)),
        case("settings_changed", lambda r: file_with(settings={"font": "serif"}),
             lambda c, r: run_sql(c, "UPDATE user_settings SET font = 'mono', updated_at = ? WHERE user_id = ?",
                                  LATER, r.user_id),
             lambda c, r: run_sql(c, SETTINGS_DEFAULTS, r.user_id, STAMP, STAMP)),
        case("score_changed", lambda r: file_with(competency_scores=[
            {"competency_id": "analytical-thinking", "score": 5, "assessed_at": LATER}]),
             lambda c, r: run_sql(c, "UPDATE user_competency_scores SET assessed_at = ? WHERE user_id = ?",
                                  "2026-04-01T00:00:00.000Z", r.user_id),
             lambda c, r: run_sql(c, "INSERT INTO user_competency_scores (id, user_id, competency_id, score, "
                                     "assessed_at) VALUES ('s', ?, 'analytical-thinking', 2, ?)", r.user_id, STAMP)),
        case("tags_not_owned", lambda r: file_with(tool_instances=[
            {**tool_entry("mine", "list-builder", listed), "updated_at": LATER, "skills": ["composure"]}]),
             lambda c, r: run_sql(c, "DELETE FROM tool_instances WHERE id = 'mine'"),
             lambda c, r: insert_tool(c, "mine", r.user_id, keys.content_hash(r.dek, listed))),
    ]


@pytest.mark.parametrize(("document", "setup", "meanwhile", "name"), _guard_cases())
def test_each_guard_of_the_merge_fires_when_what_it_read_changed(seeded: Path, document: Any, setup: Any,
                                                                  meanwhile: Any, name: str) -> None:
    with connect_sync(seeded) as conn:
        reader = engine_principal(conn, "reader")
        if setup is not None:
            setup(conn, reader)
        before = counts(seeded)
        assert drive_with_interference(conn, merge_of(reader, document(reader)), lambda c: meanwhile(c, reader)) == name
    after = counts(seeded)
    assert after["exercise_skills"] == before["exercise_skills"]  # the failed batch wrote nothing


def test_the_sign_in_merge_is_guarded_on_the_anonymous_workbook(seeded: Path) -> None:
    from app.domain.portability.merge import merge_work

    with connect_sync(seeded) as conn:
        account, phone = engine_principal(conn, "account"), engine_principal(conn, "phone")
        insert_answer(conn, "typed-on-the-phone", "phone",
                      sealed=keys.seal_column(phone.dek, {"text": "x"}, table="exercise_responses",
                                              row_id="typed-on-the-phone"))
        work = merge_work(account.user_id, account.dek, STAMP, None, dry_run=False, source=(phone.user_id, phone.dek))
        assert drive_with_interference(conn, work, lambda c: insert_answer(c, "saved-meanwhile", "phone", "2")) == \
            "workbook_changed"
        assert [r[0] for r in conn.execute("SELECT id FROM users ORDER BY id")] == ["account", "phone"]
        assert conn.execute("SELECT count(*) FROM exercise_responses WHERE user_id = 'phone'").fetchone()[0] == 2
        assert conn.execute("SELECT count(*) FROM exercise_responses WHERE user_id = 'account'").fetchone()[0] == 0
