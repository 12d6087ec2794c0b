"""Skills: searching what a reader may tag, adding custom skills, and the editors' review.

The small seed's master list is Active listening (transferable), Composure (self_management)
and Bookkeeping (knowledge). Ann and Ben are two readers on the same service.
"""

from __future__ import annotations

import io
import json
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from app.cli import main
from app.db.connection import connect_sync, run_batch
from app.db.engine import GuardFailed, Stmt
from app.db.queries import Q
from app.domain import keys
from app.domain.errors import Conflict
from app.domain.sessions import Principal
from app.domain.skills import (
    MAX_CUSTOM_SKILLS,
    MAX_NAME_LENGTH,
    MAX_QUERY_LENGTH,
    SEARCH_LIMIT,
    add_work,
    review_work,
)
from tests.conftest import JobLog
from tests.helpers import Reader, cli_env, query
from tests.test_engine import STAMP, drive_with_interference
from tests.test_settings_api import read_then

pytestmark = pytest.mark.both_engines

MASTER = ["Active listening", "Bookkeeping", "Composure"]


@pytest.fixture
def ann(seeded: Path, new_reader: Callable[[], Reader]) -> Reader:
    r = new_reader()
    r.start()
    return r


@pytest.fixture
def ben(seeded: Path, new_reader: Callable[[], Reader]) -> Reader:
    r = new_reader()
    r.start()
    return r


def names(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return [s["name"] for s in response.json()]


def add(r: Reader, name: str, category: str | None = None) -> Any:
    body: dict[str, Any] = {"name": name}
    if category is not None:
        body["category"] = category
    return r.post("/api/skills", body)


@pytest.fixture(autouse=True)
def quiet_access_log(request: pytest.FixtureRequest) -> None:
    """The app's access log flushes a moment after a request, to stdout: into the output of a
    `skills review` run by CliRunner meanwhile. Sent elsewhere here."""
    if "client" in request.fixturenames:
        lines = request.getfixturevalue("client").app.state.access_log
        if lines is not None:
            lines.stream = io.StringIO()


def review(db_path: Path, *args: str, input: str | None = None) -> Any:
    return CliRunner().invoke(main, ["skills", "review", "--db", str(db_path), *args], input=input, env=cli_env(db_path))


def user_id(r: Reader) -> str:
    return str(r.get("/api/me").json()["id"])


def skill_count(db_path: Path) -> int:
    return int(query(db_path, "SELECT count(*) FROM skills")[0][0])


# --- search ----------------------------------------------------------------------------------


def test_without_a_query_the_whole_master_list_by_name(ann: Reader) -> None:
    response = ann.get("/api/skills")
    assert names(response) == MASTER
    assert response.json()[0] == {"id": "active-listening", "name": "Active listening", "category": "transferable",
                                  "is_custom": False, "review_status": None}


def test_search_ignores_case_and_extra_whitespace(ann: Reader) -> None:
    assert names(ann.get("/api/skills", params={"q": "LISTEN"})) == ["Active listening"]
    assert names(ann.get("/api/skills", params={"q": "  active   LIST "})) == ["Active listening"]
    assert names(ann.get("/api/skills", params={"q": "keep"})) == ["Bookkeeping"]
    assert names(ann.get("/api/skills", params={"q": "juggling"})) == []


def test_search_within_one_category(ann: Reader) -> None:
    assert names(ann.get("/api/skills", params={"category": "knowledge"})) == ["Bookkeeping"]
    assert names(ann.get("/api/skills", params={"category": "knowledge", "q": "listen"})) == []
    add(ann, "Listening to music", "knowledge")
    assert names(ann.get("/api/skills", params={"category": "knowledge", "q": "listen"})) == ["Listening to music"]
    # An empty category is no filter, as the page sends it before one is chosen.
    assert names(ann.get("/api/skills", params={"category": ""})) == [*MASTER, "Listening to music"]


def test_an_unknown_category_is_refused(ann: Reader) -> None:
    for category in ("Knowledge", "soft", "transferable "):
        response = ann.get("/api/skills", params={"category": category})
        assert response.status_code == 422 and response.json()["code"] == "unknown_skill_category", category


def test_percent_and_underscore_are_plain_characters(ann: Reader) -> None:
    assert names(ann.get("/api/skills", params={"q": "%"})) == []
    assert names(ann.get("/api/skills", params={"q": "_"})) == []
    assert names(ann.get("/api/skills", params={"q": "c_mposure"})) == []
    assert names(ann.get("/api/skills", params={"q": "act%ing"})) == []
    add(ann, "Giving 100% effort")
    add(ann, "snake_case naming")
    assert names(ann.get("/api/skills", params={"q": "%"})) == ["Giving 100% effort"]
    assert names(ann.get("/api/skills", params={"q": "e_c"})) == ["snake_case naming"]


def test_a_long_query_is_refused(ann: Reader) -> None:
    assert ann.get("/api/skills", params={"q": "a" * MAX_QUERY_LENGTH}).status_code == 200
    response = ann.get("/api/skills", params={"q": "a" * (MAX_QUERY_LENGTH + 1)})
    assert response.status_code == 422 and response.json()["code"] == "query_too_long"


def test_results_are_sorted_by_name_ignoring_case(ann: Reader) -> None:
    add(ann, "bee keeping")
    add(ann, "Zoology")
    add(ann, "abacus")
    assert names(ann.get("/api/skills")) == ["abacus", "Active listening", "bee keeping", "Bookkeeping", "Composure",
                                             "Zoology"]


def test_results_are_bounded(ann: Reader, seeded: Path) -> None:
    me = user_id(ann)
    query(seeded, "INSERT INTO skills (id, name, category, is_custom, created_by, review_status, created_at) "
                    "SELECT 'bulk-' || value, 'Skill ' || printf('%03d', value), NULL, 1, ?, 'pending', "
                    "'2026-01-01T00:00:00.000Z' FROM json_each(?)", (me, json.dumps(list(range(SEARCH_LIMIT + 20)))))
    found = names(ann.get("/api/skills", params={"q": "skill"}))
    assert len(found) == SEARCH_LIMIT and found == sorted(found)
    assert found[0] == "Skill 000"


def test_my_custom_skills_are_mine_alone_until_approved(ann: Reader, ben: Reader, seeded: Path) -> None:
    created = add(ann, "Woodworking", "transferable").json()
    assert names(ann.get("/api/skills", params={"q": "wood"})) == ["Woodworking"]
    assert ann.get("/api/skills", params={"q": "wood"}).json()[0]["review_status"] == "pending"
    assert names(ben.get("/api/skills", params={"q": "wood"})) == []
    assert names(ben.get("/api/skills")) == MASTER

    assert review(seeded, "--approve", created["id"]).exit_code == 0
    shared = ben.get("/api/skills", params={"q": "wood"}).json()
    assert shared == [{**created, "review_status": "approved"}]


def test_search_is_exactly_the_skills_a_reader_may_tag(ann: Reader, ben: Reader, seeded: Path) -> None:
    # One rule: what search shows is what tagging accepts (skill_tags.usable_skills).
    mine_pending = add(ann, "Ann pending").json()["id"]
    mine_rejected = add(ann, "Ann rejected").json()["id"]
    mine_approved = add(ann, "Ann approved").json()["id"]
    theirs_pending = add(ben, "Ben pending").json()["id"]
    theirs_rejected = add(ben, "Ben rejected").json()["id"]
    theirs_approved = add(ben, "Ben approved").json()["id"]
    review(seeded, "--approve", mine_approved, "--approve", theirs_approved,
           "--reject", mine_rejected, "--reject", theirs_rejected)
    every_id = [r[0] for r in query(seeded, "SELECT id FROM skills")]
    for reader in (ann, ben):
        me = user_id(reader)
        taggable = {r[0] for r in query(seeded, Q.usable_skills, (json.dumps(every_id), me))}
        assert {s["id"] for s in reader.get("/api/skills").json()} == taggable
    ann_sees = {s["id"] for s in ann.get("/api/skills").json()}
    assert {mine_pending, mine_rejected, mine_approved, theirs_approved} <= ann_sees
    assert not {theirs_pending, theirs_rejected} & ann_sees


def test_search_needs_a_session(seeded: Path, new_reader) -> None:
    stranger = new_reader()
    assert stranger.get("/api/skills").status_code == 401


def test_search_is_one_read_batch_and_adding_one_more_write(ann: Reader, db_jobs: JobLog) -> None:
    module = "app.domain.skills"
    ann.get("/api/skills", params={"q": "list", "category": "transferable"})
    assert db_jobs.mine() == [("read", module)]
    db_jobs.clear()
    assert add(ann, "Woodworking").status_code == 201
    assert db_jobs.mine() == [("read", module), ("write", module)]
    db_jobs.clear()
    assert add(ann, "woodworking").status_code == 200  # found: nothing to write
    assert db_jobs.mine() == [("read", module)]


# --- adding ----------------------------------------------------------------------------------


def test_adding_a_new_skill_then_the_same_name_again(ann: Reader, seeded: Path) -> None:
    first = add(ann, "  Wood   working ", "transferable")
    assert first.status_code == 201, first.text
    skill = first.json()
    assert skill["name"] == "Wood working" and skill["category"] == "transferable"
    assert skill["is_custom"] is True and skill["review_status"] == "pending"
    assert uuid.UUID(skill["id"]).version == 4
    row = query(seeded, "SELECT * FROM skills WHERE id = ?", (skill["id"],))[0]
    assert row["created_by"] == user_id(ann) and row["is_custom"] == 1 and row["review_status"] == "pending"
    assert row["name"] == "Wood working" and row["created_at"].endswith("Z")

    for variant in ("wood working", "WOOD WORKING", "\tWood\n working  "):
        again = add(ann, variant, "knowledge")
        assert again.status_code == 200, variant
        assert again.json() == skill  # the existing one, category unchanged
    assert skill_count(seeded) == 4


def test_a_name_on_the_master_list_returns_the_master_skill(ann: Reader, seeded: Path) -> None:
    response = add(ann, "active LISTENING")
    assert response.status_code == 200
    assert response.json() == {"id": "active-listening", "name": "Active listening", "category": "transferable",
                               "is_custom": False, "review_status": None}
    assert skill_count(seeded) == 3


def test_another_readers_pending_skill_is_never_revealed_by_adding(ann: Reader, ben: Reader, seeded: Path) -> None:
    anns = add(ann, "Woodworking").json()
    bens = add(ben, "woodworking")
    assert bens.status_code == 201 and bens.json()["id"] != anns["id"]
    assert names(ben.get("/api/skills", params={"q": "wood"})) == ["woodworking"]


def test_an_approved_skill_of_another_reader_is_returned_instead_of_a_copy(ann: Reader, ben: Reader, seeded: Path) -> None:
    anns = add(ann, "Woodworking").json()
    review(seeded, "--approve", anns["id"])
    response = add(ben, "WOODWORKING")
    assert response.status_code == 200 and response.json()["id"] == anns["id"]


def test_a_rejected_skill_stays_with_its_author(ann: Reader, seeded: Path) -> None:
    anns = add(ann, "Woodworking").json()
    review(seeded, "--reject", anns["id"])
    again = add(ann, "woodworking")
    assert again.status_code == 200 and again.json() == {**anns, "review_status": "rejected"}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"name": ""}, "invalid_skill_name"),
        ({"name": "   \n\t "}, "invalid_skill_name"),
        ({"name": "x" * (MAX_NAME_LENGTH + 1)}, "invalid_skill_name"),
        ({"name": "bell\x07ringing"}, "invalid_skill_name"),
        ({"name": "Woodworking", "category": "crafts"}, "unknown_skill_category"),
        ({"name": "Woodworking", "category": "Knowledge"}, "unknown_skill_category"),
        ({"name": "Woodworking", "created_by": "someone-else"}, "validation_failed"),
        ({"name": "Woodworking", "review_status": "approved"}, "validation_failed"),
        ({"category": "knowledge"}, "validation_failed"),
        ({"name": 42}, "validation_failed"),
        ({"name": "x" * 1001}, "validation_failed"),
        (["Woodworking"], "validation_failed"),
    ],
)
def test_a_bad_skill_is_refused_and_nothing_is_added(ann: Reader, seeded: Path, body: Any, code: str) -> None:
    response = ann.post("/api/skills", body)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == code
    assert skill_count(seeded) == 3


def test_a_name_of_exactly_the_limit_after_trimming_is_accepted(ann: Reader) -> None:
    response = add(ann, "   " + "x" * MAX_NAME_LENGTH + "   ")
    assert response.status_code == 201 and response.json()["name"] == "x" * MAX_NAME_LENGTH


def test_a_reader_may_hold_a_bounded_number_of_custom_skills(ann: Reader, ben: Reader, seeded: Path) -> None:
    me = user_id(ann)
    query(seeded, "INSERT INTO skills (id, name, category, is_custom, created_by, review_status, created_at) "
                    "SELECT 'mine-' || value, 'Mine ' || value, NULL, 1, ?, 'pending', "
                    "'2026-01-01T00:00:00.000Z' FROM json_each(?)", (me, json.dumps(list(range(MAX_CUSTOM_SKILLS)))))
    refused = add(ann, "One too many")
    assert refused.status_code == 409 and refused.json()["code"] == "too_many_custom_skills"
    assert add(ann, "Mine 7").status_code == 200  # an existing one is still found
    assert add(ben, "One too many").status_code == 201  # the limit is per reader
    assert skill_count(seeded) == 3 + MAX_CUSTOM_SKILLS + 1


def test_adding_needs_a_session_and_the_csrf_header(seeded: Path, new_reader, ann: Reader) -> None:
    assert new_reader().post("/api/skills", {"name": "Woodworking"}).status_code == 401
    response = ann.post("/api/skills", {"name": "Woodworking"}, csrf=False)
    assert response.status_code == 403 and response.json()["code"] == "csrf_failed"
    assert skill_count(seeded) == 3


def test_a_custom_skill_can_tag_its_authors_answer(ann: Reader, ben: Reader) -> None:
    mine = add(ann, "Woodworking").json()["id"]
    answer = {"response": {"text": "I built a shed."}, "skills": [mine, "composure"]}
    saved = ann.put("/api/exercises/1.1.1.v1/response", answer)
    assert saved.status_code == 200, saved.text
    refused = ben.put("/api/exercises/1.1.1.v1/response", answer)
    assert refused.status_code == 422 and refused.json()["code"] == "unknown_skill"


# --- review ----------------------------------------------------------------------------------


def test_review_lists_pending_skills_without_their_authors(ann: Reader, ben: Reader, seeded: Path) -> None:
    first = add(ann, "Woodworking", "transferable").json()
    second = add(ben, "Sourdough").json()
    approved = add(ben, "Sailing").json()
    review(seeded, "--approve", approved["id"])
    result = review(seeded, "--list")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "2 custom skill(s) waiting for review"
    assert first["id"] in lines[1] and "Woodworking" in lines[1] and "(transferable)" in lines[1]
    assert second["id"] in lines[2] and "(no category)" in lines[2]
    assert "Sailing" not in result.output
    for reader in (ann, ben):
        assert user_id(reader) not in result.output


def test_review_with_nothing_pending(seeded: Path) -> None:
    result = review(seeded)
    assert result.exit_code == 0 and "0 custom skill(s) waiting for review" in result.output


def test_rejecting_keeps_a_skill_with_its_author_only(ann: Reader, ben: Reader, seeded: Path) -> None:
    anns = add(ann, "Woodworking").json()
    result = review(seeded, "--reject", anns["id"])
    assert result.exit_code == 0 and result.output.startswith("rejected")
    assert ann.get("/api/skills", params={"q": "wood"}).json() == [{**anns, "review_status": "rejected"}]
    assert names(ben.get("/api/skills", params={"q": "wood"})) == []
    assert "Woodworking" not in review(seeded, "--list").output


def test_an_unknown_id_is_one_line_and_changes_nothing(ann: Reader, seeded: Path) -> None:
    anns = add(ann, "Woodworking").json()
    for args in (["--approve", anns["id"], "--approve", "no-such-skill"], ["--reject", "active-listening"]):
        result = review(seeded, *args)
        assert result.exit_code == 1
        assert result.output.strip().splitlines()[-1].startswith("dreamtree: error: no custom skill with id")
        assert "Traceback" not in result.output
    assert query(seeded, "SELECT review_status FROM skills WHERE id = ?", (anns["id"],))[0][0] == "pending"
    assert query(seeded, "SELECT review_status FROM skills WHERE id = 'active-listening'")[0][0] is None


def test_approving_and_rejecting_the_same_skill_is_refused(ann: Reader, seeded: Path) -> None:
    anns = add(ann, "Woodworking").json()
    result = review(seeded, "--approve", anns["id"], "--reject", anns["id"])
    assert result.exit_code == 1 and "dreamtree: error: Cannot both approve and reject" in result.output


def test_the_shared_list_never_holds_the_same_name_twice(ann: Reader, ben: Reader, seeded: Path) -> None:
    anns = add(ann, "Woodworking").json()
    bens = add(ben, "WOODWORKING ").json()
    both = review(seeded, "--approve", anns["id"], "--approve", bens["id"])
    assert both.exit_code == 1 and "shared list already has that name" in both.output
    statuses = {r[0]: r[1] for r in query(seeded, "SELECT id, review_status FROM skills WHERE is_custom = 1")}
    assert statuses == {anns["id"]: "pending", bens["id"]: "pending"}
    master = add(ann, "Composure ").json()
    assert master["id"] == "composure"  # (a master-list name never becomes a custom skill)


def test_interactive_review_asks_for_each_skill(ann: Reader, ben: Reader, seeded: Path) -> None:
    first = add(ann, "Woodworking").json()
    second = add(ben, "Sourdough").json()
    third = add(ben, "Sailing").json()
    result = review(seeded, input="a\nr\ns\n")
    assert result.exit_code == 0, result.output
    assert "approved 1, rejected 1, skipped 1" in result.output
    statuses = {r[0]: r[1] for r in query(seeded, "SELECT id, review_status FROM skills WHERE is_custom = 1")}
    assert statuses == {first["id"]: "approved", second["id"]: "rejected", third["id"]: "pending"}
    assert names(ann.get("/api/skills", params={"q": "s"})) == ["Active listening", "Composure"]
    assert "Sourdough" in names(ben.get("/api/skills", params={"q": "s"}))


def test_quitting_the_interactive_review_keeps_the_decisions_made(ann: Reader, seeded: Path) -> None:
    first = add(ann, "Woodworking").json()
    add(ann, "Sourdough")
    result = review(seeded, input="x\na\nq\n")  # an unknown answer is asked again
    assert result.exit_code == 0, result.output
    assert "approved 1, rejected 0, skipped 0" in result.output
    assert [r[0] for r in query(seeded, "SELECT id FROM skills WHERE review_status = 'approved'")] == [first["id"]]


def test_interactive_review_explains_a_refusal_and_goes_on(ann: Reader, ben: Reader, seeded: Path) -> None:
    anns = add(ann, "Woodworking").json()
    bens = add(ben, "woodworking").json()
    result = review(seeded, input="a\na\n")
    assert result.exit_code == 0, result.output
    assert "shared list already has that name" in result.output
    assert "approved 1, rejected 0, skipped 1" in result.output
    statuses = {r[0]: r[1] for r in query(seeded, "SELECT id, review_status FROM skills WHERE is_custom = 1")}
    assert statuses == {anns["id"]: "approved", bens["id"]: "pending"}


def test_review_escapes_control_characters_in_names(seeded: Path) -> None:
    # Names typed through the API cannot hold them; an old import could.
    query(seeded, "INSERT INTO skills (id, name, is_custom, review_status, created_at) "
                    "VALUES ('odd', 'Red' || char(27) || '[31m', 1, 'pending', '2026-01-01T00:00:00.000Z')")
    output = review(seeded, "--list").output
    assert "\x1b" not in output and "Red\\u001b[31m" in output


def test_review_of_a_missing_database_is_one_line(tmp_path: Path) -> None:
    result = review(tmp_path / "nothing.db", "--list")
    assert result.exit_code == 1 and result.output.startswith("dreamtree: error:")


# --- query plans -----------------------------------------------------------------------------


def plan(conn: sqlite3.Connection, name: str, params: tuple[Any, ...]) -> str:
    return " | ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + Q[name], params))


def test_the_review_queue_uses_the_partial_review_index(conn: sqlite3.Connection) -> None:
    assert "USING INDEX idx_skills_review (review_status=?)" in plan(conn, "pending_custom_skills", ())


def test_a_category_search_uses_the_category_index(conn: sqlite3.Connection) -> None:
    assert "USING INDEX idx_skills_category (category=?)" in plan(conn, "search_skills_in_category", ("u", "q", "knowledge", 10))


def test_review_decisions_find_skills_by_id(conn: sqlite3.Connection) -> None:
    assert "USING INDEX sqlite_autoindex_skills_1 (id=?)" in plan(conn, "custom_skills_among", ('["x"]',))
    assert "USING INDEX sqlite_autoindex_skills_1 (id=?)" in plan(conn, "decide_pending_skills", ('["x"]', "[]"))


# --- the write batches guard what the decision read ---------------------------------------------


@pytest.fixture
def editors(seeded: Path) -> Iterator[tuple[sqlite3.Connection, Principal, Principal]]:
    """A plain connection and two readers, Ann and Ben, for running works by hand."""
    conn = connect_sync(seeded)
    try:
        for user in ("ann", "ben"):
            conn.execute("INSERT INTO users (id, created_at, updated_at) VALUES (?, ?, ?)", (user, STAMP, STAMP))
        yield conn, *(Principal(u, f"sid-{u}", keys.new_data_key(), True) for u in ("ann", "ben"))
    finally:
        conn.close()


def insert_skill(conn: sqlite3.Connection, skill_id: str, name: str, owner: str | None, status: str = "pending") -> None:
    run_batch(conn, [Stmt("INSERT INTO skills (id, name, is_custom, created_by, review_status, created_at)"
                          " VALUES (?, ?, 1, ?, ?, ?)", (skill_id, name, owner, status, STAMP))], True)


def custom_names(conn: sqlite3.Connection, owner: str) -> list[str]:
    return [r[0] for r in conn.execute("SELECT name FROM skills WHERE created_by = ? ORDER BY name", (owner,))]


def test_two_tabs_adding_the_same_name_at_once_leave_one_skill(editors) -> None:
    conn, ann, _ben = editors
    work = add_work(ann, "Woodworking", None, STAMP)
    assert drive_with_interference(conn, work, lambda c: insert_skill(c, "other-tab", "WOODWORKING", "ann")) == "skills_changed"
    assert custom_names(conn, "ann") == ["WOODWORKING"]
    again = read_then(conn, add_work(ann, "Woodworking", None, STAMP), lambda: None)  # the engine's next attempt
    assert (again.skill.id, again.created) == ("other-tab", False)


def test_a_same_name_approved_meanwhile_is_returned_instead_of_a_copy(editors) -> None:
    conn, ann, _ben = editors
    insert_skill(conn, "bens", "Sourdough", "ben")
    work = add_work(ann, "sourdough", None, STAMP)
    approve = Stmt("UPDATE skills SET review_status = 'approved' WHERE id = 'bens'")
    assert drive_with_interference(conn, work, lambda c: run_batch(c, [approve], True)) == "skills_changed"
    assert custom_names(conn, "ann") == []
    assert read_then(conn, add_work(ann, "sourdough", None, STAMP), lambda: None).skill.id == "bens"


def test_the_insert_itself_holds_the_limit(editors) -> None:
    """Adds racing past the read's count: the INSERT counts again and writes nothing."""
    conn, ann, _ben = editors
    for n in range(MAX_CUSTOM_SKILLS - 1):
        insert_skill(conn, f"mine-{n}", f"Mine {n}", "ann")
    work = add_work(ann, "One too many", None, STAMP)
    with pytest.raises(Conflict) as refused:
        read_then(conn, work, lambda: insert_skill(conn, "last", "The last one", "ann"))
    assert refused.value.instance_code == "too_many_custom_skills"
    assert len(custom_names(conn, "ann")) == MAX_CUSTOM_SKILLS


def test_the_limit_guard_fires_on_its_own(editors) -> None:
    conn, ann, _ben = editors
    work = add_work(ann, "Woodworking", None, STAMP)
    batch = next(work)
    results = run_batch(conn, batch.statements, False)
    write = work.send(results)
    limit = [s for s in write.statements if s.sql == Q.insert_custom_skill_within_limit][0]
    assert limit.params[-1] == MAX_CUSTOM_SKILLS
    squeezed = [Stmt(s.sql, (*s.params[:-1], 0)) if s is limit else s for s in write.statements]
    with pytest.raises(GuardFailed) as failed:
        run_batch(conn, squeezed, True)
    assert failed.value.name == "custom_skill_limit"
    assert custom_names(conn, "ann") == []


def test_another_readers_adds_never_stop_mine(editors) -> None:
    conn, ann, _ben = editors
    work = add_work(ann, "Woodworking", None, STAMP)
    added = read_then(conn, work, lambda: insert_skill(conn, "bens", "Woodworking", "ben"))
    assert added.created and custom_names(conn, "ann") == ["Woodworking"]


def test_a_skill_another_editor_decided_meanwhile_is_not_decided_again(editors) -> None:
    conn, _ann, _ben = editors
    insert_skill(conn, "anns", "Woodworking", "ann")
    work = review_work([("anns", "rejected")])
    approve = Stmt("UPDATE skills SET review_status = 'approved' WHERE id = 'anns'")
    assert drive_with_interference(conn, work, lambda c: run_batch(c, [approve], True)) == "skill_decided_meanwhile"
    assert conn.execute("SELECT review_status FROM skills WHERE id = 'anns'").fetchone()[0] == "approved"
    with pytest.raises(Conflict) as refused:  # the engine's next attempt reads it decided
        read_then(conn, review_work([("anns", "rejected")]), lambda: None)
    assert refused.value.instance_code == "skill_not_pending"


def test_an_approval_never_puts_a_name_on_the_shared_list_twice(editors) -> None:
    conn, _ann, _ben = editors
    insert_skill(conn, "anns", "Woodworking", "ann")
    insert_skill(conn, "bens", "WOODWORKING", "ben")
    work = review_work([("anns", "approved")])
    other_editor = Stmt("UPDATE skills SET review_status = 'approved' WHERE id = 'bens'")
    assert drive_with_interference(conn, work, lambda c: run_batch(c, [other_editor], True)) == "shared_list_changed"
    assert conn.execute("SELECT review_status FROM skills WHERE id = 'anns'").fetchone()[0] == "pending"


def test_only_pending_skills_are_reviewed(ann: Reader, seeded: Path) -> None:
    anns = add(ann, "Woodworking").json()
    assert review(seeded, "--approve", anns["id"]).exit_code == 0
    again = review(seeded, "--reject", anns["id"])
    assert again.exit_code == 1 and "is not pending" in again.output
    assert query(seeded, "SELECT review_status FROM skills WHERE id = ?", (anns["id"],))[0][0] == "approved"


def test_a_review_is_one_read_batch_and_one_write_batch(ann: Reader, seeded: Path, db_jobs: JobLog) -> None:
    first, second = add(ann, "Woodworking").json(), add(ann, "Sourdough").json()
    db_jobs.clear()
    assert review(seeded, "--approve", first["id"], "--reject", second["id"]).exit_code == 0
    assert db_jobs.mine() == [("read", "app.domain.skills"), ("write", "app.domain.skills")]
    db_jobs.clear()
    assert review(seeded, "--list").exit_code == 0
    assert db_jobs.mine() == [("read", "app.domain.skills")]
