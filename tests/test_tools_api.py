"""Tools over HTTP: the catalogue and its unlocks, entries created, read, edited and deleted by
their owner only, content validated, sealed and hashed, skills tagged, origins checked."""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pytest

from app.db.connection import connect_sync, run_batch
from app.db.engine import GuardFailed, Work, Write
from app.db.queries import Q
from app.domain import keys, tools
from app.domain.errors import Conflict, NotFound
from app.domain.sessions import Principal
from app.domain.tool_shapes import content_schema, validate_content
from tests.helpers import Reader, query
from tests.test_engine import STAMP, drive_with_interference, principal
from tests.test_tool_shapes import SAMPLES

pytestmark = pytest.mark.both_engines

LIST = "/api/tools/list-builder/instances"


def answer(r: Reader, full_id: str) -> None:
    response = r.put(f"/api/exercises/{full_id}/response", {"response": {"text": f"my answer to {full_id}"}})
    assert response.status_code == 200, response.text


def create(r: Reader, content: Any, path: str = LIST, **extra: Any) -> Any:
    return r.post(path, {"content": content, **extra})


def made(r: Reader, content: Any, path: str = LIST, **extra: Any) -> dict[str, Any]:
    response = create(r, content, path, **extra)
    assert response.status_code == 201, response.text
    return response.json()


def catalogue(r: Reader) -> dict[str, dict[str, Any]]:
    response = r.get("/api/tools")
    assert response.status_code == 200, response.text
    return {t["id"]: t for t in response.json()}


@pytest.fixture
def reader(seeded, new_reader) -> Reader:
    r = new_reader()
    r.start()
    return r


@pytest.fixture
def ann(reader: Reader) -> Reader:
    """A reader who has answered 1.1.1.v1, which unlocks list-builder in seed_small."""
    answer(reader, "1.1.1.v1")
    return reader


def answer_directly(db_path: Path, user_id: str, up_to: int) -> None:
    """Answers to the first `up_to` places, written straight to the table (only where they
    are matters to unlocks, not what they say)."""
    conn = connect_sync(db_path, strict=False)
    try:
        rows = conn.execute("SELECT * FROM exercise_sequence WHERE sequence_order <= ? ORDER BY sequence_order",
                            (up_to,)).fetchall()
        conn.executemany(
            "INSERT INTO exercise_responses (id, user_id, part_id, module_id, exercise_id, version, full_exercise_id,"
            " response_json, responded_at) VALUES (?, ?, ?, ?, ?, ?, ?, '{}', '2026-01-01T00:00:00.000Z')",
            [(str(uuid.uuid4()), user_id, r["part_id"], r["module_id"], r["exercise_id"], r["version"],
              r["full_exercise_id"]) for r in rows
             if not conn.execute("SELECT 1 FROM exercise_responses WHERE user_id = ? AND full_exercise_id = ?",
                                 (user_id, r["full_exercise_id"])).fetchone()])
    finally:
        conn.close()


# --- the catalogue ------------------------------------------------------------------------------


def test_catalogue_of_a_new_reader(reader: Reader) -> None:
    body = reader.get("/api/tools").json()
    assert [t["id"] for t in body] == ["list-builder", "flow-tracker"]  # the order the workbook unlocks them
    first = body[0]
    assert first == {"id": "list-builder", "singular_name": "List", "plural_name": "Lists", "icon_name": "list",
                     "has_reminder": False, "reminder_frequency": None, "unlocked": False, "instance_count": 0,
                     "content_schema": content_schema("list-builder")}
    assert body[1]["has_reminder"] is True and body[1]["reminder_frequency"] == "daily"


def test_answering_the_unlocking_exercise_unlocks_the_tool(reader: Reader) -> None:
    assert not catalogue(reader)["list-builder"]["unlocked"]
    answer(reader, "1.1.1.v1")
    after = catalogue(reader)
    assert after["list-builder"]["unlocked"] is True and after["flow-tracker"]["unlocked"] is False
    answer(reader, "1.1.2.v1")
    answer(reader, "1.2.1.v1")
    assert catalogue(reader)["flow-tracker"]["unlocked"] is True


def test_instance_counts_are_per_reader_and_per_tool(ann: Reader, new_reader) -> None:
    made(ann, {"title": "One"})
    made(ann, {"title": "Two"})
    assert catalogue(ann)["list-builder"]["instance_count"] == 2
    assert catalogue(ann)["flow-tracker"]["instance_count"] == 0
    bob = new_reader()
    bob.start()
    assert catalogue(bob)["list-builder"]["instance_count"] == 0


def test_full_workbook_lists_all_ten_tools_in_unlock_order(full_seed: Path, new_reader) -> None:
    r = new_reader()
    r.start()
    order = [row[0] for row in query(full_seed, "SELECT unlocks_tool FROM exercise_sequence"
                                              " WHERE unlocks_tool IS NOT NULL ORDER BY sequence_order")]
    body = r.get("/api/tools").json()
    assert [t["id"] for t in body] == order and len(order) == 10
    assert not any(t["unlocked"] for t in body)


def test_unlock_flags_agree_with_the_spec_query_at_every_position(full_seed: Path, new_reader) -> None:
    """One set-based statement for all tools gives exactly spec §12's per-tool answer."""
    spec_unlocked = """SELECT EXISTS (SELECT 1 FROM exercise_responses er JOIN exercise_sequence es
        ON er.full_exercise_id = es.full_exercise_id WHERE er.user_id = ? AND es.unlocks_tool = ?) as is_unlocked"""
    r = new_reader()
    r.start()
    user = r.get("/api/me").json()["id"]
    tool_ids = [row[0] for row in query(full_seed, "SELECT id FROM tool_types")]
    seen_flips = set()
    for position in (0, 1, 4, 5, 6, 7, 16, 17, 22, 23, 33, 36, 37, 38, 41):
        answer_directly(full_seed, user, position)
        ours = {t: c["unlocked"] for t, c in catalogue(r).items()}
        conn = connect_sync(full_seed)
        try:
            theirs = {t: bool(conn.execute(spec_unlocked, (user, t)).fetchone()[0]) for t in tool_ids}
            by_place = {t: bool(conn.execute(Q.tool_unlocked, (user, t)).fetchone()[0]) for t in tool_ids}
        finally:
            conn.close()
        assert ours == theirs == by_place, position
        seen_flips.add(sum(ours.values()))
    assert seen_flips == set(range(11))  # from none to all ten, every step seen


def test_an_answer_to_an_older_version_keeps_the_tool_unlocked(ann: Reader, publish_v2) -> None:
    publish_v2()
    assert catalogue(ann)["list-builder"]["unlocked"] is True
    assert create(ann, {"title": "still mine"}).status_code == 201


# --- creating, reading, editing, deleting --------------------------------------------------------


def test_creating_needs_the_unlock(reader: Reader, db_path: Path) -> None:
    refused = create(reader, {"title": "Too early"})
    assert refused.status_code == 403 and refused.json()["code"] == "tool_locked"
    assert query(db_path, "SELECT count(*) FROM tool_instances")[0][0] == 0


def test_an_entry_from_creation_to_deletion(ann: Reader, clock, db_path: Path) -> None:
    clock.set("2026-03-01T09:00:00.000Z")
    created = create(ann, {"title": "Jobs I have held", "items": ["Barista"]})
    assert created.status_code == 201
    entry = created.json()
    assert set(entry) == {"id", "tool_type", "origin", "content", "skills", "content_hash", "created_at", "updated_at"}
    assert entry["tool_type"] == "list-builder" and entry["origin"] == "standalone" and entry["skills"] == []
    assert entry["content"] == {"title": "Jobs I have held", "items": ["Barista"]}
    assert entry["created_at"] == entry["updated_at"] == "2026-03-01T09:00:00.000Z"
    assert ann.get(f"/api/tool-instances/{entry['id']}").json() == entry
    assert ann.get(LIST).json() == [entry]

    clock.set("2026-03-02T10:30:00.000Z")
    edited = ann.put(f"/api/tool-instances/{entry['id']}", {"content": {"title": "Jobs", "items": ["Barista", "Clerk"]}})
    assert edited.status_code == 200
    after = edited.json()
    assert after["content"] == {"title": "Jobs", "items": ["Barista", "Clerk"]}
    assert after["created_at"] == "2026-03-01T09:00:00.000Z" and after["updated_at"] == "2026-03-02T10:30:00.000Z"
    assert after["id"] == entry["id"] and after["origin"] == "standalone"
    assert ann.get(f"/api/tool-instances/{entry['id']}").json() == after

    deleted = ann.delete(f"/api/tool-instances/{entry['id']}")
    assert deleted.status_code == 204 and deleted.content == b""
    assert ann.get(f"/api/tool-instances/{entry['id']}").status_code == 404
    assert ann.delete(f"/api/tool-instances/{entry['id']}").status_code == 404
    assert ann.get(LIST).json() == []
    assert query(db_path, "SELECT count(*) FROM tool_instances")[0][0] == 0


def test_content_is_stored_normalised(ann: Reader) -> None:
    entry = made(ann, {"title": "  Spaces kept  "})
    assert entry["content"] == {"title": "  Spaces kept  ", "items": []}
    assert ann.get(f"/api/tool-instances/{entry['id']}").json()["content"] == entry["content"]


def test_newest_first(ann: Reader, clock) -> None:
    clock.set("2026-03-01T09:00:00.000Z")
    first = made(ann, {"title": "first"})
    clock.advance(minutes=1)
    second = made(ann, {"title": "second"})
    clock.advance(minutes=1)
    third = made(ann, {"title": "third"})
    same_time = made(ann, {"title": "fourth, same millisecond"})
    clock.advance(minutes=1)
    ann.put(f"/api/tool-instances/{first['id']}", {"content": {"title": "first, edited last"}})
    listed = [e["id"] for e in ann.get(LIST).json()]
    assert listed == [same_time["id"], third["id"], second["id"], first["id"]]  # by creation, edits do not reorder


def test_every_tool_takes_its_own_shape(full_seed: Path, new_reader) -> None:
    r = new_reader()
    r.start()
    answer_directly(full_seed, r.get("/api/me").json()["id"], 41)
    for tool, content in SAMPLES.items():
        entry = made(r, content, f"/api/tools/{tool}/instances")
        assert entry["content"] == content and entry["tool_type"] == tool
        for other in SAMPLES:
            fields = set(content_schema(other)["$defs"][content_schema(other)["$ref"].rsplit("/", 1)[1]]["properties"])
            if not set(content) <= fields:  # another tool's content fits only if all its fields are there
                refused = create(r, content, f"/api/tools/{other}/instances")
                assert refused.status_code == 422 and refused.json()["code"] == "invalid_tool_content", (tool, other)
    assert all(t["instance_count"] == 1 for t in catalogue(r).values())


# --- refusals ------------------------------------------------------------------------------------


def test_unknown_tools_are_404(ann: Reader) -> None:
    for path in ("/api/tools/time-machine/instances", "/api/tools/resume-builder/instances"):  # resume: not in seed_small
        listed = ann.get(path)
        assert listed.status_code == 404 and listed.json()["code"] == "tool_not_found"
        posted = create(ann, {"headline": "x"}, path)
        assert posted.status_code == 404 and posted.json()["code"] == "tool_not_found"


@pytest.mark.parametrize(
    ("content", "code", "where"),
    [
        ({"title": "L", "colour": "red"}, "invalid_tool_content", "unknown field `colour`"),
        ({"items": ["no title"]}, "invalid_tool_content", "missing required field `title`"),
        ({"title": "   "}, "invalid_tool_content", "$.title"),
        ({"title": "x" * 201}, "invalid_tool_content", "$.title"),
        ({"title": "L", "items": ["x" * 1001]}, "invalid_tool_content", "$.items[0]"),
        ({"title": "L", "items": ["x"] * 201}, "invalid_tool_content", "$.items"),
        ({"title": "L", "items": [1]}, "invalid_tool_content", "$.items[0]"),
        ("just text", "invalid_tool_content", "Expected `object`"),
        (None, "invalid_tool_content", "Expected `object`"),
        ({"title": "L", "items": ["x" * 999] * 70}, "tool_content_too_large", "64 KiB"),
    ],
)
def test_content_that_does_not_fit_is_refused_and_changes_nothing(ann: Reader, db_path: Path, content: Any,
                                                                   code: str, where: str) -> None:
    refused = create(ann, content)
    assert refused.status_code == 422, refused.text
    body = refused.json()
    assert body["code"] == code and where in body["detail"] and body["detail"].startswith("list-builder content")
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert query(db_path, "SELECT count(*) FROM tool_instances")[0][0] == 0


def test_edits_are_validated_against_the_entry_s_tool(ann: Reader) -> None:
    entry = made(ann, {"title": "Mine"})
    refused = ann.put(f"/api/tool-instances/{entry['id']}", {"content": {"activity": "flow-tracker content"}})
    assert refused.status_code == 422 and refused.json()["code"] == "invalid_tool_content"
    assert ann.get(f"/api/tool-instances/{entry['id']}").json() == entry


def test_unknown_body_fields_are_refused(ann: Reader) -> None:
    posted = ann.post(LIST, {"content": {"title": "L"}, "colour": "red"})
    assert posted.status_code == 422 and posted.json()["code"] == "validation_failed"
    assert ann.post(LIST, {"origin": "standalone"}).status_code == 422  # content is required
    entry = made(ann, {"title": "L"})
    edited = ann.put(f"/api/tool-instances/{entry['id']}", {"content": {"title": "L"}, "origin": "standalone"})
    assert edited.status_code == 422 and edited.json()["code"] == "validation_failed"
    assert ann.post(LIST, {"content": {"title": "L"}, "origin": "x" * 101}).status_code == 422


def test_a_body_that_is_not_json_is_400(ann: Reader) -> None:
    broken = ann.request("POST", LIST, content=b'{"content": ', headers={"content-type": "application/json"})
    assert broken.status_code == 400 and broken.headers["content-type"].startswith("application/problem+json")


def test_state_changes_need_the_csrf_header(ann: Reader, db_path: Path) -> None:
    assert ann.post(LIST, {"content": {"title": "L"}}, csrf=False).status_code == 403
    entry = made(ann, {"title": "L"})
    assert ann.put(f"/api/tool-instances/{entry['id']}", {"content": {"title": "M"}}, csrf=False).status_code == 403
    assert ann.delete(f"/api/tool-instances/{entry['id']}", csrf=False).status_code == 403
    assert query(db_path, "SELECT count(*) FROM tool_instances")[0][0] == 1
    assert ann.get(f"/api/tool-instances/{entry['id']}").json()["content"]["title"] == "L"


def test_without_a_session_nothing_is_shown(client) -> None:
    reader = Reader(client)
    reader.get("/healthz")
    assert reader.get("/api/tools").status_code == 401
    assert reader.get(LIST).status_code == 401


def test_entries_per_tool_are_capped(ann: Reader, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tools, "MAX_INSTANCES_PER_TOOL", 2)
    made(ann, {"title": "1"})
    second = made(ann, {"title": "2"})
    refused = create(ann, {"title": "3"})
    assert refused.status_code == 409 and refused.json()["code"] == "tool_instance_limit"
    ann.delete(f"/api/tool-instances/{second['id']}")
    assert create(ann, {"title": "3"}).status_code == 201


# --- origin --------------------------------------------------------------------------------------


def test_origin_is_standalone_or_an_answered_exercise(ann: Reader) -> None:
    assert made(ann, {"title": "a"})["origin"] == "standalone"
    assert made(ann, {"title": "b"}, origin="1.1.1.v1")["origin"] == "1.1.1.v1"
    for bad in ("1.2.1.v1", "1.1.1.v2", "9.9.9.v1", "1.1.1", "../../etc", "STANDALONE", " standalone"):
        refused = create(ann, {"title": "c"}, origin=bad)
        assert refused.status_code == 422 and refused.json()["code"] == "invalid_origin", bad


def test_another_reader_s_answer_is_no_origin(ann: Reader, new_reader) -> None:
    bob = new_reader()
    bob.start()
    answer(bob, "1.1.1.v1")
    answer(bob, "1.1.2.v1")
    refused = create(ann, {"title": "c"}, origin="1.1.2.v1")
    assert refused.status_code == 422 and refused.json()["code"] == "invalid_origin"


def test_an_answer_under_an_older_version_is_still_an_origin(ann: Reader, publish_v2) -> None:
    publish_v2()
    assert made(ann, {"title": "as answered"}, origin="1.1.1.v1")["origin"] == "1.1.1.v1"
    assert made(ann, {"title": "as published now"}, origin="1.1.1.v2")["origin"] == "1.1.1.v2"
    assert create(ann, {"title": "never"}, origin="1.1.1.v3").status_code == 422


# --- two readers ---------------------------------------------------------------------------------


def test_two_readers_never_see_or_change_each_other_s_entries(ann: Reader, new_reader, db_path: Path) -> None:
    entry = made(ann, {"title": "Ann's private list", "items": ["secret"]})
    bob = new_reader()
    bob.start()
    answer(bob, "1.1.1.v1")
    for response in (bob.get(f"/api/tool-instances/{entry['id']}"),
                     bob.put(f"/api/tool-instances/{entry['id']}", {"content": {"title": "Bob was here"}}),
                     bob.delete(f"/api/tool-instances/{entry['id']}")):
        assert response.status_code == 404
        assert response.json()["code"] == "tool_instance_not_found"
        assert "Ann" not in response.text
    unknown_id = str(uuid.uuid4())
    unknown, others = bob.get(f"/api/tool-instances/{unknown_id}").json(), bob.get(f"/api/tool-instances/{entry['id']}").json()
    assert unknown["detail"].replace(unknown_id, "ID") == others["detail"].replace(entry["id"], "ID")  # indistinguishable
    assert bob.get(LIST).json() == []
    assert catalogue(bob)["list-builder"]["instance_count"] == 0
    bobs = made(bob, {"title": "Bob's list"})
    assert [e["id"] for e in ann.get(LIST).json()] == [entry["id"]]
    assert ann.get(f"/api/tool-instances/{entry['id']}").json() == entry
    assert ann.get(f"/api/tool-instances/{bobs['id']}").status_code == 404
    assert query(db_path, "SELECT count(*) FROM tool_instances")[0][0] == 2


# --- sealing and hashing -------------------------------------------------------------------------


def test_content_is_encrypted_at_rest(ann: Reader, db_path: Path) -> None:
    canary = "canary-5e1b-dream-of-running-a-bakery"
    entry = made(ann, {"title": canary, "items": [canary]})
    stored, stored_hash = query(db_path, "SELECT content_json, content_hash FROM tool_instances")[0]
    assert canary not in stored and keys.is_envelope(json.loads(stored))
    assert stored_hash == entry["content_hash"]
    plain_sha = hashlib.sha256(keys.canonical_json(entry["content"])).hexdigest()
    assert stored_hash != plain_sha  # keyed: not a guessing oracle


def test_content_hash_follows_the_content(ann: Reader, new_reader) -> None:
    one = made(ann, {"title": "Same", "items": []})
    two = made(ann, {"items": [], "title": "Same"})
    three = made(ann, {"title": "Same"})  # the default fills in: the same entry
    assert one["content_hash"] == two["content_hash"] == three["content_hash"]
    assert len(one["content_hash"]) == 64
    changed = ann.put(f"/api/tool-instances/{one['id']}", {"content": {"title": "Different"}}).json()
    assert changed["content_hash"] != one["content_hash"]
    back = ann.put(f"/api/tool-instances/{one['id']}", {"content": {"title": "Same"}}).json()
    assert back["content_hash"] == one["content_hash"]
    bob = new_reader()
    bob.start()
    answer(bob, "1.1.1.v1")
    assert made(bob, {"title": "Same"})["content_hash"] != one["content_hash"]  # unlinkable across readers


# --- skills --------------------------------------------------------------------------------------


def test_skills_are_tagged_through_exercise_skills(ann: Reader, db_path: Path) -> None:
    entry = made(ann, {"title": "Tagged"}, skills=["active-listening", "composure", "composure"])
    assert entry["skills"] == ["active-listening", "composure"]
    rows = query(db_path, "SELECT skill_id FROM exercise_skills WHERE exercise_instance_id = ? ORDER BY skill_id", (entry["id"],))
    assert [r[0] for r in rows] == ["active-listening", "composure"]
    assert ann.get(LIST).json()[0]["skills"] == ["active-listening", "composure"]

    kept = ann.put(f"/api/tool-instances/{entry['id']}", {"content": {"title": "Edited"}}).json()
    assert kept["skills"] == ["active-listening", "composure"]
    replaced = ann.put(f"/api/tool-instances/{entry['id']}", {"content": {"title": "Edited"}, "skills": ["composure"]})
    assert replaced.json()["skills"] == ["composure"]
    cleared = ann.put(f"/api/tool-instances/{entry['id']}", {"content": {"title": "Edited"}, "skills": []})
    assert cleared.json()["skills"] == []

    ann.put(f"/api/tool-instances/{entry['id']}", {"content": {"title": "Edited"}, "skills": ["composure"]})
    assert ann.delete(f"/api/tool-instances/{entry['id']}").status_code == 204
    assert query(db_path, "SELECT count(*) FROM exercise_skills WHERE exercise_instance_id = ?", (entry["id"],))[0][0] == 0


def test_unknown_skills_are_refused_and_change_nothing(ann: Reader, db_path: Path) -> None:
    refused = create(ann, {"title": "x"}, skills=["no-such-skill"])
    assert refused.status_code == 422 and refused.json()["code"] == "unknown_skill"
    assert query(db_path, "SELECT count(*) FROM tool_instances")[0][0] == 0
    entry = made(ann, {"title": "x"}, skills=["composure"])
    edit = ann.put(f"/api/tool-instances/{entry['id']}", {"content": {"title": "y"}, "skills": ["no-such-skill"]})
    assert edit.status_code == 422 and edit.json()["code"] == "unknown_skill"
    assert ann.get(f"/api/tool-instances/{entry['id']}").json() == entry


# --- locked tools that already hold entries -------------------------------------------------------


def test_imported_entries_of_a_locked_tool_can_be_read_edited_and_deleted(reader: Reader) -> None:
    document = {"version": "1.1", "exported_at": "2026-01-01T00:00:00.000Z", "encrypted": False,
                "tool_instances": [{"id": "t-1", "tool_type": "flow-tracker", "origin": "standalone",
                                    "content_json": {"activity": "Gardening", "energy": 4},
                                    "created_at": "2026-01-01T00:00:00.000Z", "updated_at": "2026-01-01T00:00:00.000Z"}]}
    report = reader.post("/api/import?dry_run=false", {"document": document})
    assert report.status_code == 200 and report.json()["counts"]["tool_instances"]["inserted"] == 1
    flow = catalogue(reader)["flow-tracker"]
    assert flow["unlocked"] is False and flow["instance_count"] == 1
    [entry] = reader.get("/api/tools/flow-tracker/instances").json()
    assert entry["content"] == {"activity": "Gardening", "energy": 4, "focus": None, "notes": ""}
    edited = reader.put(f"/api/tool-instances/{entry['id']}", {"content": {"activity": "Gardening", "energy": 5}})
    assert edited.status_code == 200
    locked = create(reader, {"activity": "New"}, "/api/tools/flow-tracker/instances")
    assert locked.status_code == 403 and locked.json()["code"] == "tool_locked"
    assert reader.delete(f"/api/tool-instances/{entry['id']}").status_code == 204


# --- performance ---------------------------------------------------------------------------------

# The user tables and the aliases the queries give them.
USER_TABLES = {"exercise_responses", "tool_instances", "exercise_skills", "er", "ti"}


@pytest.mark.parametrize("name", ["tool_catalogue", "tool_type_row", "tool_for_reader", "tool_instances_of_type",
                                  "tool_tags_of_type", "tool_instance_of_user", "tool_instance_head",
                                  "tool_origin_answered", "insert_tool_instance", "update_tool_instance",
                                  "delete_tool_instance", "tool_unlocked", "tags_of_own", "delete_own_tags",
                                  "insert_own_tags"])
def test_tool_queries_never_scan_a_user_table(full_seed: Path, name: str) -> None:
    sql = Q[name]
    count = max([int(n) for n in re.findall(r"\?(\d+)", sql)] or [sql.count("?")])
    plan = [row[3] for row in query(full_seed, "EXPLAIN QUERY PLAN " + sql, (None,) * count)]
    scanned = {step.split()[1] for step in plan if step.startswith("SCAN ")}
    assert not scanned & USER_TABLES, (name, plan)
    assert any(step.startswith("SEARCH") for step in plan), (name, plan)


def test_each_tools_request_is_one_read_batch_and_a_change_one_more_write(ann: Reader, db_jobs) -> None:
    mine = [("read", tools.__name__)]
    changes = [("read", tools.__name__), ("write", tools.__name__)]

    def costs(response: Any, status: int, jobs: list[tuple[str, str]]) -> Any:
        assert response.status_code == status, response.text
        assert db_jobs.mine() == jobs
        db_jobs.clear()
        return response

    db_jobs.clear()
    costs(ann.get("/api/tools"), 200, mine)
    entry = costs(create(ann, {"title": "a"}, origin="1.1.1.v1", skills=["composure"]), 201, changes).json()
    made(ann, {"title": "b"}, skills=["active-listening"])
    db_jobs.clear()
    assert len(costs(ann.get(LIST), 200, mine).json()) == 2  # the tags of every entry in the same batch
    costs(ann.get(f"/api/tool-instances/{entry['id']}"), 200, mine)
    costs(ann.put(f"/api/tool-instances/{entry['id']}", {"content": {"title": "b"}, "skills": ["composure"]}), 200,
          changes)
    costs(ann.put(f"/api/tool-instances/{entry['id']}", {"content": {"title": "c"}}), 200, changes)
    costs(ann.delete(f"/api/tool-instances/{entry['id']}"), 204, changes)
    # a refusal costs the read alone
    costs(ann.delete(f"/api/tool-instances/{entry['id']}"), 404, mine)
    costs(create(ann, {"title": "d"}, origin="1.2.1.v1"), 422, mine)


# --- guards: another request changes the rows between a work's read and its write ----------------
# Run by hand as the d1 engine runs a work (read batch, decision, write batch), with a change
# made in between (tests/test_engine.py::drive_with_interference).

LATER = "2026-03-09T08:00:00.000Z"
LATEST = "2026-03-10T09:00:00.000Z"


def by_hand(conn: sqlite3.Connection, work: Work[Any]) -> Any:
    """A work run to its answer, read batch then write batch, with nothing in between."""
    batch = next(work)
    try:
        while True:
            batch = work.send(run_batch(conn, batch.statements, isinstance(batch, Write)))
    except StopIteration as done:
        return done.value


def unlocked_reader(conn: sqlite3.Connection, user_id: str) -> Principal:
    """A reader who answered 1.1.1.v1, which unlocks list-builder in seed_small."""
    reader = principal(conn, user_id)
    conn.execute("INSERT INTO exercise_responses (id, user_id, part_id, module_id, exercise_id, version,"
                 " full_exercise_id, response_json, responded_at)"
                 " VALUES (?, ?, '1', '1', '1', 1, '1.1.1.v1', '{}', ?)", (f"answer-{user_id}", user_id, STAMP))
    return reader


def creating(reader: Principal, instance_id: str, skills: list[str] | None = None) -> Work[tools.ToolInstance]:
    content = validate_content("list-builder", {"title": instance_id})
    return tools.create_work(reader, "list-builder", content, tools.STANDALONE, skills, instance_id,
                             keys.seal_column(reader.dek, content, table=tools.TABLE, row_id=instance_id),
                             keys.content_hash(reader.dek, content), STAMP)


def entry_of(conn: sqlite3.Connection, reader: Principal, instance_id: str) -> tuple[Any, list[str]] | None:
    """What the database holds for an entry: its content opened, and its tags."""
    row = conn.execute("SELECT content_json FROM tool_instances WHERE id = ?", (instance_id,)).fetchone()
    tags = [r[0] for r in conn.execute("SELECT skill_id FROM exercise_skills WHERE exercise_instance_id = ?"
                                       " ORDER BY skill_id", (instance_id,))]
    if row is None:
        assert tags == []  # no tags outlive their entry
        return None
    return keys.open_column(reader.dek, row[0], table=tools.TABLE, row_id=instance_id)["title"], tags


def test_a_create_racing_another_never_passes_the_limit(seeded: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tools, "MAX_INSTANCES_PER_TOOL", 2)
    with connect_sync(seeded) as conn:
        ann = unlocked_reader(conn, "ann")
        by_hand(conn, creating(ann, "first"))
        late = creating(ann, "late", ["composure"])  # reads one entry: room for one more

        def meanwhile(c: sqlite3.Connection) -> None:
            by_hand(c, creating(ann, "second"))  # the same reader's other tab takes the last place

        assert drive_with_interference(conn, late, meanwhile) == "tool_instance_limit"
        assert conn.execute("SELECT count(*) FROM tool_instances WHERE user_id = 'ann'").fetchone()[0] == 2
        assert entry_of(conn, ann, "late") is None
        with pytest.raises(Conflict) as refused:  # what the work answers when that guard fails
            late.throw(GuardFailed("tool_instance_limit"))
        assert refused.value.instance_code == "tool_instance_limit"


def test_an_edit_racing_another_edit_writes_one_edit_whole(seeded: Path) -> None:
    with connect_sync(seeded) as conn:
        ann = unlocked_reader(conn, "ann")
        by_hand(conn, creating(ann, "entry", ["composure"]))
        mine = tools.edit_work(ann, "entry", {"title": "mine"}, ["active-listening"], LATER)

        def meanwhile(c: sqlite3.Connection) -> None:
            by_hand(c, tools.edit_work(ann, "entry", {"title": "theirs"}, [], LATER))

        assert drive_with_interference(conn, mine, meanwhile) == "tool_instance_changed"
        assert entry_of(conn, ann, "entry") == ("theirs", [])  # their content with their tags, none of mine
        # the engine runs the work again on fresh reads: then mine is written whole
        again = by_hand(conn, tools.edit_work(ann, "entry", {"title": "mine"}, ["active-listening"], LATEST))
        assert again.skills == ["active-listening"] and again.updated_at == LATEST
        assert entry_of(conn, ann, "entry") == ("mine", ["active-listening"])


def test_an_edit_racing_a_delete_writes_nothing_and_then_finds_no_entry(seeded: Path) -> None:
    with connect_sync(seeded) as conn:
        ann = unlocked_reader(conn, "ann")
        by_hand(conn, creating(ann, "entry", ["composure"]))
        edit = tools.edit_work(ann, "entry", {"title": "edited"}, ["active-listening"], LATER)

        def meanwhile(c: sqlite3.Connection) -> None:
            by_hand(c, tools.delete_work(ann, "entry"))

        assert drive_with_interference(conn, edit, meanwhile) == "tool_instance_changed"
        assert entry_of(conn, ann, "entry") is None
        with pytest.raises(NotFound):  # the retry
            by_hand(conn, tools.edit_work(ann, "entry", {"title": "edited"}, None, LATER))


def test_a_delete_racing_another_delete_is_then_404(seeded: Path) -> None:
    with connect_sync(seeded) as conn:
        ann = unlocked_reader(conn, "ann")
        by_hand(conn, creating(ann, "entry", ["composure"]))

        def meanwhile(c: sqlite3.Connection) -> None:
            by_hand(c, tools.delete_work(ann, "entry"))

        assert drive_with_interference(conn, tools.delete_work(ann, "entry"), meanwhile) == "tool_instance_gone"
        assert entry_of(conn, ann, "entry") is None
        with pytest.raises(NotFound):
            by_hand(conn, tools.delete_work(ann, "entry"))


def test_works_never_reach_another_reader_s_entry(seeded: Path) -> None:
    with connect_sync(seeded) as conn:
        ann, bob = unlocked_reader(conn, "ann"), unlocked_reader(conn, "bob")
        by_hand(conn, creating(ann, "anns", ["composure"]))
        for work in (tools.instance_work(bob, "anns"), tools.edit_work(bob, "anns", {"title": "bob"}, [], LATER),
                     tools.delete_work(bob, "anns")):
            with pytest.raises(NotFound):
                by_hand(conn, work)
        assert by_hand(conn, tools.instances_work(bob, "list-builder")) == []
        assert entry_of(conn, ann, "anns") == ("anns", ["composure"])
