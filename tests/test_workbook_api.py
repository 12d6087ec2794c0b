"""The workbook over HTTP: outline, linear progression, answers, modules, versions, two readers."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from app.db.connection import connect_sync
from app.db.queries import Q
from tests.conftest import SMALL_SEED
from tests.helpers import Reader, query, seed_into

pytestmark = pytest.mark.both_engines


@pytest.fixture
def reader(seeded, new_reader) -> Reader:
    r = new_reader()
    r.start()
    return r


def answer(r: Reader, full_id: str, response: object = None, **extra: object):
    return r.put(f"/api/exercises/{full_id}/response", {"response": response or {"text": f"my answer to {full_id}"}, **extra})


def test_outline_of_a_new_reader(reader: Reader) -> None:
    body = reader.get("/api/workbook").json()
    assert [p["title"] for p in body["parts"]] == ["Know Where You Stand"]
    modules = body["parts"][0]["modules"]
    assert [(m["module_id"], m["title"], m["completed"]) for m in modules] == [
        ("1.1", "Taking Stock", False), ("1.2", "Energy", False)]
    exercises = [e for m in modules for e in m["exercises"]]
    assert [(e["full_exercise_id"], e["title"], e["status"], e["is_required"]) for e in exercises] == [
        ("1.1.1.v1", "Your Career So Far", "available", True),
        ("1.1.2.v1", "Good Days", "locked", False),
        ("1.2.1.v1", "Flow", "locked", True),
        ("1.2.2.v1", "Looking Ahead", "locked", True),
    ]
    assert exercises[0]["unlocks_tool"] == "list-builder"
    assert body["progress"] == {"answered": 0, "required": 3, "percent": 0}
    assert body["next_exercise_id"] == "1.1.1.v1"


def test_next_exercise_in_full(reader: Reader) -> None:
    body = reader.get("/api/workbook/next").json()
    assert body["full_exercise_id"] == "1.1.1.v1" and body["title"] == "Your Career So Far"
    assert body["module_id"] == "1.1" and body["part_id"] == "1" and body["exercise_id"] == "1"
    assert [(b["content_type"], b["content_text"]) for b in body["blocks"]] == [
        ("instruction", "List the jobs you have held."), ("prompt", "Which one taught you the most?")]
    assert body["sources"] == [{
        "reference_id": "burnett-evans-2016", "usage_type": "framework", "citation_number": 1,
        "label": "Adapted from Burnett & Evans, *Designing Your Life*", "notes": None}]
    assert body["response"] is None and body["is_required"] is True


def test_locked_exercises_refuse_reads_and_writes(reader: Reader) -> None:
    read = reader.get("/api/exercises/1.2.1.v1")
    assert read.status_code == 403 and read.json()["code"] == "exercise_locked"
    write = answer(reader, "1.2.1.v1")
    assert write.status_code == 403 and write.json()["code"] == "exercise_locked"
    assert reader.get("/api/exercises/9.9.9.v1").status_code == 404


def test_answering_moves_on_and_unlocks(reader: Reader, db_path: Path) -> None:
    first = answer(reader, "1.1.1.v1")
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["unlocked_tool"] == "list-builder"
    assert body["module_completed"] is True  # 1.1.2 is optional: 1.1 is complete
    assert body["next_exercise_id"] == "1.1.2.v1"
    assert body["response"]["response"] == {"text": "my answer to 1.1.1.v1"}
    modules = reader.get("/api/modules").json()
    assert [m["module_id"] for m in modules] == ["1.1"]
    assert modules[0]["first_completed_at"] == modules[0]["last_modified_at"]
    again = answer(reader, "1.1.1.v1", {"text": "a better answer"})
    assert again.json()["unlocked_tool"] is None and again.json()["module_completed"] is False
    assert query(db_path, "SELECT count(*) FROM exercise_responses")[0][0] == 1
    shown = reader.get("/api/exercises/1.1.1.v1").json()["response"]
    assert shown["response"] == {"text": "a better answer"}
    later = reader.get("/api/modules").json()[0]
    assert later["first_completed_at"] == modules[0]["first_completed_at"]
    assert later["last_modified_at"] > modules[0]["last_modified_at"]


def test_answers_are_encrypted_at_rest(reader: Reader, db_path: Path) -> None:
    canary = "canary-7f3a9-my-secret-career-dream"
    answer(reader, "1.1.1.v1", {"text": canary})
    stored = query(db_path, "SELECT response_json FROM exercise_responses")[0][0]
    assert canary not in stored and '"$enc"' in stored


def test_whole_workbook_walkthrough(reader: Reader) -> None:
    order = ["1.1.1.v1", "1.1.2.v1", "1.2.1.v1", "1.2.2.v1"]
    completed = []
    for full_id in order:
        assert reader.get("/api/workbook/next").json()["full_exercise_id"] == full_id
        result = answer(reader, full_id).json()
        if result["module_completed"]:
            completed.append(full_id)
    assert completed == ["1.1.1.v1", "1.2.2.v1"]
    assert reader.get("/api/workbook/next").json() == {"complete": True}
    outline = reader.get("/api/workbook").json()
    assert outline["progress"] == {"answered": 3, "required": 3, "percent": 100}
    assert outline["next_exercise_id"] is None
    assert all(m["completed"] for p in outline["parts"] for m in p["modules"])
    assert reader.get("/api/me").json()["workbook_complete"] is True


def test_the_whole_sample_workbook_from_first_exercise_to_last(full_seed: Path, new_reader, db_path: Path) -> None:
    """The real seed/ workbook, answered in order through the API: at each step the next
    exercise, the progress, the tools unlocked and the module rows are what the sequence says."""
    r = new_reader()
    me = r.start()
    places = query(db_path, "SELECT full_exercise_id, part_id, module_id, is_required, unlocks_tool "
                          "FROM exercise_sequence ORDER BY sequence_order")
    required_in: dict[str, set[str]] = {}
    for p in places:
        if p["is_required"]:
            required_in.setdefault(f"{p['part_id']}.{p['module_id']}", set()).add(p["full_exercise_id"])
    answered: set[str] = set()
    unlocked: list[str] = []
    completed_before: set[str] = set()
    for place in places:
        full_id, module = place["full_exercise_id"], f"{place['part_id']}.{place['module_id']}"
        assert r.get("/api/workbook/next").json()["full_exercise_id"] == full_id
        result = answer(r, full_id)
        assert result.status_code == 200, result.text
        body = result.json()
        answered.add(full_id)
        # spec §4.2: a module is complete once every required exercise in it has an answer.
        assert required_in.get(module), f"module {module} has no required exercise"
        module_done = required_in[module] <= answered
        completed = {m["module_id"] for m in r.get("/api/modules").json()}
        assert (module in completed) == module_done
        assert body["module_completed"] == (module in completed - completed_before)
        completed_before = completed
        assert body["unlocked_tool"] == place["unlocks_tool"]
        if place["unlocks_tool"]:
            unlocked.append(place["unlocks_tool"])
        tools = {t["id"]: t["unlocked"] for t in r.get("/api/tools").json()}
        assert {t for t, is_open in tools.items() if is_open} == set(unlocked)
        required_done = sum(len(ids & answered) for ids in required_in.values())
        required = sum(len(ids) for ids in required_in.values())
        assert r.get("/api/workbook").json()["progress"] == {
            "answered": required_done, "required": required, "percent": 100 * required_done // required}
        assert body["workbook_complete"] is (required_done == required)
    assert len(unlocked) == 10 and r.get("/api/workbook/next").json() == {"complete": True}
    assert {m["module_id"] for m in r.get("/api/modules").json()} == set(required_in)
    assert r.get("/api/me").json()["workbook_complete"] is True
    cards = r.get("/api/daily-dos").json()
    assert all(card["type"] != "resume" for card in cards)  # a finished workbook has no resume card
    assert me["id"] not in str(cards)


def test_earlier_answers_stay_editable(reader: Reader) -> None:
    for full_id in ("1.1.1.v1", "1.1.2.v1", "1.2.1.v1"):
        answer(reader, full_id)
    edited = answer(reader, "1.1.1.v1", {"text": "changed my mind"})
    assert edited.status_code == 200
    assert edited.json()["next_exercise_id"] == "1.2.2.v1"


def test_variant_blocks_one_group_per_reader(seeded, new_reader) -> None:
    seen = set()
    for _ in range(12):
        r = new_reader()
        r.start()
        answer(r, "1.1.1.v1")
        body = r.get("/api/exercises/1.1.2.v1").json()
        prompts = [b["content_text"] for b in body["blocks"] if b["content_type"] == "prompt"]
        assert len(prompts) == 1 and body["blocks"][-1]["content_type"] == "reflection"
        assert r.get("/api/exercises/1.1.2.v1").json()["blocks"] == body["blocks"]  # stable
        seen.add(body["variant"])
    assert seen == {"control", "variant_a"}


def test_a_new_content_version_keeps_place_and_answer(reader: Reader, publish_v2) -> None:
    answer(reader, "1.1.1.v1", {"text": "answered under v1"})
    publish_v2()
    outline = reader.get("/api/workbook").json()
    first = outline["parts"][0]["modules"][0]["exercises"][0]
    assert first["full_exercise_id"] == "1.1.1.v2" and first["status"] == "answered"
    assert outline["next_exercise_id"] == "1.1.2.v1"
    shown = reader.get("/api/exercises/1.1.1.v2").json()
    assert shown["response"]["response"] == {"text": "answered under v1"}
    assert shown["response"]["full_exercise_id"] == "1.1.1.v1"
    assert reader.get("/api/exercises/1.1.2.v1").status_code == 200


def test_a_re_seed_shows_in_the_outline_at_once(reader: Reader, db_path: Path, tmp_path: Path) -> None:
    """The outline's content part is kept between requests; any content change shows at once."""
    before = reader.get("/api/workbook").json()["parts"][0]["modules"][0]["exercises"]
    assert (before[1]["title"], before[1]["is_required"]) == ("Good Days", False)
    folder = tmp_path / "seed-edited"
    shutil.copytree(SMALL_SEED, folder)
    part = folder / "workbook" / "part-1.md"
    text = part.read_text()
    part.write_text(text.replace("Exercise 1.1.2: Good Days", "Exercise 1.1.2: Your Best Days", 1))
    seed_into(db_path, folder)
    after = reader.get("/api/workbook").json()["parts"][0]["modules"][0]["exercises"]
    assert after[1]["title"] == "Your Best Days"  # an edit in place
    part.write_text(part.read_text().replace("required: false", "required: true", 1))
    seed_into(db_path, folder)  # only the sequence changes
    outline = reader.get("/api/workbook").json()
    assert outline["parts"][0]["modules"][0]["exercises"][1]["is_required"] is True
    assert outline["progress"]["required"] == 4


def test_two_readers_never_see_each_other(seeded, new_reader) -> None:
    ann, bob = new_reader(), new_reader()
    ann.start()
    bob.start()
    answer(ann, "1.1.1.v1", {"text": "ann's private answer"})
    assert bob.get("/api/exercises/1.1.1.v1").json()["response"] is None
    assert bob.get("/api/workbook").json()["progress"]["answered"] == 0
    assert bob.get("/api/exercises/1.1.2.v1").status_code == 403
    assert bob.get("/api/modules").json() == []
    answer(bob, "1.1.1.v1", {"text": "bob's answer"})
    assert ann.get("/api/exercises/1.1.1.v1").json()["response"]["response"] == {"text": "ann's private answer"}


def test_outlines_follow_each_readers_own_progress_whoever_asked_first(seeded, new_reader) -> None:
    """Outlines are kept per state (answered places, completed modules), not per reader: readers
    at the same place get the same outline, and one who moves on gets theirs at once."""
    ann, bob, cy = new_reader(), new_reader(), new_reader()
    for r in (ann, bob, cy):
        r.start()

    def statuses(r: Reader) -> list[str]:
        body = r.get("/api/workbook").json()
        return [e["status"] for p in body["parts"] for m in p["modules"] for e in m["exercises"]]

    fresh = statuses(ann)
    assert fresh[:2] == ["available", "locked"] and statuses(bob) == fresh
    answer(bob, "1.1.1.v1")
    assert statuses(bob)[:3] == ["answered", "available", "locked"]
    assert statuses(ann) == fresh and statuses(cy) == fresh
    answer(cy, "1.1.1.v1")
    answer(cy, "1.1.2.v1")
    answer(cy, "1.2.1.v1")
    outline = cy.get("/api/workbook").json()
    assert [e["status"] for p in outline["parts"] for m in p["modules"] for e in m["exercises"]][:4] == [
        "answered", "answered", "answered", "available"]
    assert [m["completed"] for m in outline["parts"][0]["modules"]] == [True, False]
    assert outline["next_exercise_id"] == "1.2.2.v1"
    assert bob.get("/api/workbook").json()["next_exercise_id"] == "1.1.2.v1"
    assert ann.get("/api/workbook").json()["progress"]["answered"] == 0


def test_skills_on_answers(reader: Reader) -> None:
    tagged = answer(reader, "1.1.1.v1", skills=["active-listening", "composure"])
    assert tagged.json()["response"]["skills"] == ["active-listening", "composure"]
    refused = answer(reader, "1.1.1.v1", skills=["no-such-skill"])
    assert refused.status_code == 422 and refused.json()["code"] == "unknown_skill"
    kept = answer(reader, "1.1.1.v1", {"text": "edit without touching skills"})
    assert kept.json()["response"]["skills"] == ["active-listening", "composure"]


def test_oversized_and_malformed_answers(reader: Reader) -> None:
    huge = answer(reader, "1.1.1.v1", {"text": "x" * 70_000})
    assert huge.status_code == 422 and huge.json()["code"] == "response_too_large"
    unknown = reader.put("/api/exercises/1.1.1.v1/response", {"response": {}, "extra": 1})
    assert unknown.status_code == 422


def test_progression_queries_agree_with_the_spec(seeded: Path, reader: Reader) -> None:
    """Where versions agree, our by-place queries give exactly the spec §12 answers."""
    spec_position = """SELECT MAX(es.sequence_order) as current_position FROM exercise_responses er
        JOIN exercise_sequence es ON er.full_exercise_id = es.full_exercise_id WHERE er.user_id = ?"""
    spec_next = """SELECT es.* FROM exercise_sequence es WHERE es.sequence_order = (
        SELECT COALESCE(MAX(es2.sequence_order), 0) + 1 FROM exercise_responses er
        JOIN exercise_sequence es2 ON er.full_exercise_id = es2.full_exercise_id WHERE er.user_id = ?)"""
    spec_unlocked = """SELECT EXISTS (SELECT 1 FROM exercise_responses er JOIN exercise_sequence es
        ON er.full_exercise_id = es.full_exercise_id WHERE er.user_id = ? AND es.unlocks_tool = ?) as is_unlocked"""
    user = reader.get("/api/me").json()["id"]
    for step in ["1.1.1.v1", "1.1.2.v1", "1.2.1.v1", "1.2.2.v1", None]:
        conn = connect_sync(seeded)
        try:
            ours_orders = [r[0] for r in conn.execute(Q.answered_orders, (user,))]
            assert max(ours_orders, default=None) == conn.execute(spec_position, (user,)).fetchone()[0]
            ours = conn.execute(Q.next_exercise, (user,)).fetchone()
            theirs = conn.execute(spec_next, (user,)).fetchone()
            assert (dict(ours) if ours else None) == (dict(theirs) if theirs else None)
            for tool in ("list-builder", "flow-tracker"):
                assert conn.execute(Q.tool_unlocked, (user, tool)).fetchone()[0] == conn.execute(spec_unlocked, (user, tool)).fetchone()[0]
        finally:
            conn.close()
        if step:
            answer(reader, step)


def test_answers_must_be_portable_json(reader: Reader) -> None:
    deep: list = []
    node = deep
    for _ in range(40):
        node.append([])
        node = node[0]
    assert answer(reader, "1.1.1.v1", {"deep": deep}).status_code == 422
    huge = reader.request("PUT", "/api/exercises/1.1.1.v1/response", content=b'{"response": {"n": 12345678901234567890}}',
                          headers={"content-type": "application/json"})
    assert huge.status_code == 422 and "too large" in huge.json()["detail"]
    assert answer(reader, "1.1.1.v1", {"n": 9007199254740991, "x": 1.5}).status_code == 200


def test_each_workbook_request_is_one_read_batch_and_an_answer_one_more_write(reader: Reader, db_jobs) -> None:
    from app.domain import workbook

    reader.get("/api/workbook")  # the first outline also builds the content skeleton
    db_jobs.clear()
    for path in ("/api/workbook", "/api/workbook/next", "/api/exercises/1.1.1.v1", "/api/modules"):
        assert reader.get(path).status_code == 200
        assert db_jobs.mine() == [("read", workbook.__name__)], path
        db_jobs.clear()
    assert answer(reader, "1.1.1.v1").status_code == 200
    assert db_jobs.mine() == [("read", workbook.__name__), ("write", workbook.__name__)]


@pytest.mark.parametrize("empty", ["", "   ", {}, {"answer": ""}, {"text": " \n\t"}, [], None, {"a": [{"b": ""}]}])
def test_an_empty_answer_to_a_required_exercise_is_refused_and_completes_nothing(reader: Reader, empty: object) -> None:
    refused = reader.put("/api/exercises/1.1.1.v1/response", {"response": empty})
    assert refused.status_code == 422 and refused.json()["code"] == "empty_answer"
    assert reader.get("/api/workbook/next").json()["full_exercise_id"] == "1.1.1.v1"
    assert reader.get("/api/modules").json() == []


def test_an_optional_exercise_takes_an_empty_answer_and_numbers_say_something(reader: Reader) -> None:
    assert answer(reader, "1.1.1.v1", {"years": 0}).status_code == 200
    assert reader.put("/api/exercises/1.1.2.v1/response", {"response": ""}).status_code == 200


@pytest.mark.parametrize("method, path", [("PUT", "/api/exercises/1.1.1.v1/response"),
                                          ("POST", "/api/tools/list-builder/instances")])
def test_a_write_without_a_session_is_401_unless_its_body_is_not_json(seeded, new_reader, method: str,
                                                                     path: str) -> None:
    """The order of a hot write's checks: a body that is not JSON (400), then the session
    (401), then the body's shape (422); the same whatever way the handler gets its reader."""
    stranger = new_reader()
    not_json = stranger.request(method, path, content=b'{"response": ', headers={"content-type": "application/json"})
    assert not_json.status_code == 400 and not_json.json()["code"] == "invalid_json"
    for body in ({"nonsense": 1}, {"response": {"text": "hi"}, "content": {"title": "hi"}}, []):
        wrong_shape = stranger.request(method, path, json=body)
        assert wrong_shape.status_code == 401 and wrong_shape.json()["code"] == "no_session", body
    no_body = stranger.request(method, path)
    assert no_body.status_code == 401 and no_body.json()["code"] == "no_session"
    forged = new_reader()
    forged.jar.set("dt_session", "v1.forged")
    assert forged.request(method, path, json={"nonsense": 1}, csrf=False).status_code == 403  # no CSRF token yet
    forged.get("/healthz")  # now it has one
    refused = forged.request(method, path, json={"nonsense": 1})
    assert refused.status_code == 401 and refused.json()["code"] == "invalid_session"
    signed_in = new_reader()
    signed_in.start()
    wrong_shape = signed_in.request(method, path, json={"nonsense": 1})
    assert wrong_shape.status_code == 422 and wrong_shape.json()["code"] == "validation_failed"
    no_body = signed_in.request(method, path)
    assert no_body.status_code == 400 and no_body.json()["code"] == "invalid_json"
