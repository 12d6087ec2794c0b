"""Export, import and merge: spec §9 shape, round trips, merge rules, refusals, login merge."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from litestar.testing import TestClient

from app.config import Settings
from app.db import migrations
from app.db.connection import connect_sync
from app.domain import seeding
from app.http.app import create_app
from tests.conftest import SMALL_SEED
from tests.helpers import PASSWORD, Reader

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


