"""Competency self-assessment over HTTP: scores, the spec §3.3 summary, re-assessment (§13)."""

from __future__ import annotations

import json
import random
import shutil
import sqlite3
import subprocess
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import msgspec
import pytest

from app import timeutil
from app.db.connection import connect_sync
from app.db.queries import Q
from app.domain import competencies
from app.domain.competencies import reassessment_bound, summarise
from tests.conftest import JobLog
from tests.helpers import Reader
from tests.test_daily_dos import query_plan, scanned_user_tables

pytestmark = pytest.mark.both_engines

SPEC_REASSESSMENT = """SELECT
  MIN(assessed_at) as oldest_assessment,
  CASE
    WHEN MIN(assessed_at) < DATE('now', '-1 year') THEN 1
    ELSE 0
  END as reassessment_due
FROM user_competency_scores
WHERE user_id = ?;"""

DELIVERY = ["analytical-thinking", "achievement-focus", "drafting-skills", "flexible-thinking",
            "managing-resources", "teamwork-and-team-leadership"]
INTERPERSONAL = ["client-focus", "diplomatic-sensitivity", "influencing", "negotiating", "organizational-knowledge"]
STRATEGIC = ["developing-talent", "organizational-alignment", "strategic-networking", "strategic-thinking"]
ALL = DELIVERY + INTERPERSONAL + STRATEGIC

EMPTY_SUMMARY = {
    "averages": {"delivery": None, "interpersonal": None, "strategic": None, "overall": None},
    "strengths": [], "improvements": [], "reassessment_due": False, "oldest_assessment": None,
}


@pytest.fixture
def reader(full_seed: Path, pinned, new_reader) -> Reader:
    r = new_reader()
    r.start()
    return r


def save(r: Reader, scores: dict[str, int]) -> Any:
    return r.put("/api/competencies/scores", {"scores": [{"competency_id": k, "score": v} for k, v in scores.items()]})


def saved(r: Reader, scores: dict[str, int]) -> list[dict[str, Any]]:
    response = save(r, scores)
    assert response.status_code == 200, response.text
    return response.json()


def summary(r: Reader) -> dict[str, Any]:
    response = r.get("/api/competencies/summary")
    assert response.status_code == 200, response.text
    return response.json()


def reader_at(new_reader, clock, moment: str) -> Reader:
    """A reader whose session starts at `moment` (the pinned clock is set there)."""
    clock.set(moment)
    r = new_reader()
    r.start()
    return r


def travel(r: Reader, clock, moment: str) -> None:
    """Move the pinned clock forward, visiting often enough that the anonymous session stays."""
    target = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    while clock.moment < target:
        clock.set(min(target, clock.moment + timedelta(days=60)))
        assert r.get("/api/me").status_code == 200


# --- scores -----------------------------------------------------------------------------------


def test_a_new_reader_has_no_scores_and_an_empty_summary(reader: Reader) -> None:
    assert reader.get("/api/competencies/scores").json() == []
    assert summary(reader) == EMPTY_SUMMARY


def test_scores_come_back_in_the_reference_lists_order(reader: Reader) -> None:
    body = saved(reader, {"strategic-thinking": 2, "influencing": 4, "analytical-thinking": 5, "client-focus": 3})
    stamp = "2026-03-08T07:30:00.000Z"
    expected = [
        {"competency_id": "analytical-thinking", "score": 5, "assessed_at": stamp},
        {"competency_id": "client-focus", "score": 3, "assessed_at": stamp},
        {"competency_id": "influencing", "score": 4, "assessed_at": stamp},
        {"competency_id": "strategic-thinking", "score": 2, "assessed_at": stamp},
    ]
    assert body == expected
    assert reader.get("/api/competencies/scores").json() == expected


def test_saving_again_replaces_the_score_and_restamps_it(reader: Reader, pinned, db_path: Path) -> None:
    saved(reader, {"analytical-thinking": 2, "influencing": 4})
    row_id = sql(db_path, "SELECT id FROM user_competency_scores WHERE competency_id = 'influencing'")[0][0]
    pinned.advance(days=3)
    body = saved(reader, {"influencing": 4})  # the same level, confirmed: a new assessment
    assert body == [
        {"competency_id": "analytical-thinking", "score": 2, "assessed_at": "2026-03-08T07:30:00.000Z"},
        {"competency_id": "influencing", "score": 4, "assessed_at": "2026-03-11T07:30:00.000Z"},
    ]
    body = saved(reader, {"analytical-thinking": 3})
    assert body[0] == {"competency_id": "analytical-thinking", "score": 3, "assessed_at": "2026-03-11T07:30:00.000Z"}
    assert sql(db_path, "SELECT count(*) FROM user_competency_scores")[0][0] == 2
    assert sql(db_path, "SELECT id FROM user_competency_scores WHERE competency_id = 'influencing'")[0][0] == row_id


def test_all_fifteen_at_once(reader: Reader) -> None:
    body = saved(reader, {c: 1 + i % 5 for i, c in enumerate(ALL)})
    assert [s["competency_id"] for s in body] == ALL


def test_an_empty_list_changes_nothing(reader: Reader) -> None:
    saved(reader, {"negotiating": 3})
    assert reader.put("/api/competencies/scores", {"scores": []}).json() == reader.get("/api/competencies/scores").json()


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"scores": [{"competency_id": "influencing", "score": 0}]}, "validation_failed"),
        ({"scores": [{"competency_id": "influencing", "score": 6}]}, "validation_failed"),
        ({"scores": [{"competency_id": "influencing", "score": -1}]}, "validation_failed"),
        ({"scores": [{"competency_id": "influencing", "score": 3.5}]}, "validation_failed"),
        ({"scores": [{"competency_id": "influencing", "score": None}]}, "validation_failed"),
        ({"scores": [{"competency_id": "influencing", "score": True}]}, "validation_failed"),
        ({"scores": [{"competency_id": "influencing"}]}, "validation_failed"),
        ({"scores": [{"competency_id": "", "score": 3}]}, "validation_failed"),
        ({"scores": [{"competency_id": "x" * 101, "score": 3}]}, "validation_failed"),
        ({"scores": [{"competency_id": "influencing", "score": 3, "note": "hi"}]}, "validation_failed"),
        ({"scores": [], "assessed_at": "2020-01-01T00:00:00.000Z"}, "validation_failed"),
        ({}, "validation_failed"),
        ({"scores": [{"competency_id": c, "score": 3} for c in ALL * 4]}, "validation_failed"),  # 60 > 50
        ({"scores": [{"competency_id": "influencing", "score": 3}, {"competency_id": "telepathy", "score": 5}]},
         "unknown_competency"),
        ({"scores": [{"competency_id": "influencing", "score": 3}, {"competency_id": "influencing", "score": 4}]},
         "duplicate_competency"),
    ],
)
def test_bad_scores_are_refused_and_change_nothing(reader: Reader, db_path: Path, body: dict[str, Any], code: str) -> None:
    saved(reader, {"influencing": 2})
    before = sql(db_path, "SELECT * FROM user_competency_scores")
    response = reader.put("/api/competencies/scores", body)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == code
    assert [tuple(r) for r in sql(db_path, "SELECT * FROM user_competency_scores")] == [tuple(r) for r in before]


def test_a_body_that_is_not_json_is_a_400(reader: Reader) -> None:
    response = reader.request("PUT", "/api/competencies/scores", content=b"{scores:", headers={"content-type": "application/json"})
    assert response.status_code == 400 and response.json()["code"] == "invalid_json"


def test_scores_need_a_session_and_the_csrf_header(full_seed: Path, new_reader) -> None:
    stranger = new_reader()
    assert stranger.get("/api/competencies/scores").status_code == 401
    assert stranger.get("/api/competencies/summary").status_code == 401
    stranger.start()
    refused = stranger.put("/api/competencies/scores", {"scores": []}, csrf=False)
    assert refused.status_code == 403
    assert stranger.get("/api/competencies/scores").headers["cache-control"] == "no-store"


def test_two_readers_never_see_each_others_scores(full_seed: Path, new_reader) -> None:
    ann, bob = new_reader(), new_reader()
    ann.start()
    bob.start()
    saved(ann, {"influencing": 5, "negotiating": 1})
    assert bob.get("/api/competencies/scores").json() == []
    assert summary(bob) == EMPTY_SUMMARY
    saved(bob, {"influencing": 2})
    assert [(s["competency_id"], s["score"]) for s in ann.get("/api/competencies/scores").json()] == [
        ("influencing", 5), ("negotiating", 1)]
    assert summary(ann)["averages"]["overall"] == 3.0
    assert summary(bob)["averages"]["overall"] == 2.0


# --- the summary, spec §3.3 ------------------------------------------------------------------------


def ids(entries: list[dict[str, Any]]) -> list[tuple[str, int]]:
    return [(e["competency_id"], e["score"]) for e in entries]


def test_overall_3_7_makes_four_a_strength_and_three_an_improvement(reader: Reader) -> None:
    # 6 × 4 (delivery) + 3, 3, 3, 4 (interpersonal) = 37 over 10: thresholds floor(4.0) = 4, floor(3.4) = 3.
    saved(reader, {**dict.fromkeys(DELIVERY, 4), "client-focus": 3, "diplomatic-sensitivity": 3, "influencing": 3,
                   "negotiating": 4})
    body = summary(reader)
    assert body["averages"] == {"delivery": 4.0, "interpersonal": 3.25, "strategic": None, "overall": 3.7}
    assert ids(body["strengths"]) == [(c, 4) for c in DELIVERY] + [("negotiating", 4)]
    assert ids(body["improvements"]) == [("client-focus", 3), ("diplomatic-sensitivity", 3), ("influencing", 3)]


def test_overall_2_7(reader: Reader) -> None:
    # 3, 3, 3, 3, 3, 2 (delivery) + 2, 2, 3 (interpersonal) + 3 (strategic) = 27 over 10:
    # thresholds floor(3.0) = 3 and floor(2.4) = 2.
    saved(reader, {**dict.fromkeys(DELIVERY[:5], 3), DELIVERY[5]: 2, "client-focus": 2, "diplomatic-sensitivity": 2,
                   "influencing": 3, "developing-talent": 3})
    body = summary(reader)
    assert body["averages"] == {"delivery": 17 / 6, "interpersonal": 7 / 3, "strategic": 3.0, "overall": 2.7}
    assert ids(body["strengths"]) == [(c, 3) for c in DELIVERY[:5]] + [("influencing", 3), ("developing-talent", 3)]
    assert ids(body["improvements"]) == [(DELIVERY[5], 2), ("client-focus", 2), ("diplomatic-sensitivity", 2)]


def test_overall_2_3_floors_like_javascript(reader: Reader) -> None:
    """23 / 10 − 0.3 is 1.9999999999999998 in doubles: the improvement threshold is 1, not 2."""
    saved(reader, {**dict.fromkeys(DELIVERY, 2), "client-focus": 2, "diplomatic-sensitivity": 2, "influencing": 3,
                   "negotiating": 4})
    body = summary(reader)
    assert body["averages"]["overall"] == 2.3
    assert ids(body["strengths"]) == [(c, 2) for c in DELIVERY] + [
        ("client-focus", 2), ("diplomatic-sensitivity", 2), ("influencing", 3), ("negotiating", 4)]
    assert body["improvements"] == []


def test_all_equal_scores_are_all_strengths(reader: Reader) -> None:
    saved(reader, dict.fromkeys(ALL, 3))
    body = summary(reader)
    assert body["averages"] == {"delivery": 3.0, "interpersonal": 3.0, "strategic": 3.0, "overall": 3.0}
    assert ids(body["strengths"]) == [(c, 3) for c in ALL]
    assert body["improvements"] == []


@pytest.mark.parametrize("score", [5, 3, 1])
def test_a_single_score_is_its_own_strength(reader: Reader, score: int) -> None:
    saved(reader, {"negotiating": score})
    body = summary(reader)
    assert body["averages"] == {"delivery": None, "interpersonal": float(score), "strategic": None,
                                "overall": float(score)}
    assert ids(body["strengths"]) == [("negotiating", score)]
    assert body["improvements"] == []  # floor(score − 0.3) is score − 1


def test_an_average_that_does_not_end_is_returned_unrounded(reader: Reader) -> None:
    # 4, 4, 3: 11 / 3 = 3.6666666666666665; thresholds floor(3.97) = 3 and floor(3.37) = 3.
    saved(reader, {"developing-talent": 4, "organizational-alignment": 4, "strategic-thinking": 3})
    body = summary(reader)
    assert body["averages"]["strategic"] == body["averages"]["overall"] == 3.6666666666666665
    assert ids(body["strengths"]) == [("developing-talent", 4), ("organizational-alignment", 4), ("strategic-thinking", 3)]
    assert ids(body["improvements"]) == [("strategic-thinking", 3)]


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_summary_is_the_specs_javascript(reader: Reader) -> None:
    """spec §3.3's TypeScript, run by node, gives what we give for every possible overall
    average (each count of scores 1–15, each total), spread over random competencies."""
    rng = random.Random(20260308)
    cases = []
    for count in range(1, len(ALL) + 1):
        for total in range(count, 5 * count + 1):
            levels = [1 + (total - count) // count + (i < (total - count) % count) for i in range(count)]
            rng.shuffle(levels)
            cases.append([{"competencyId": c, "score": s} for c, s in zip(rng.sample(ALL, count), levels)])
    categories = {c: "delivery" for c in DELIVERY} | {c: "interpersonal" for c in INTERPERSONAL} | {
        c: "strategic" for c in STRATEGIC}
    script = """
const categories = %s;
const cases = %s;
const getCategory = (id) => categories[id];
const average = (xs) => xs.length ? xs.reduce((a, s) => a + s.score, 0) / xs.length : null;
console.log(JSON.stringify(cases.map((scores) => {
  const deliveryAvg = average(scores.filter(s => getCategory(s.competencyId) === 'delivery'));
  const interpersonalAvg = average(scores.filter(s => getCategory(s.competencyId) === 'interpersonal'));
  const strategicAvg = average(scores.filter(s => getCategory(s.competencyId) === 'strategic'));
  const overallAvg = average(scores);
  const strengthThreshold = Math.floor(overallAvg + 0.3);
  const improvementThreshold = Math.floor(overallAvg - 0.3);
  const strengths = scores.filter(s => s.score >= strengthThreshold);
  const improvements = scores.filter(s => s.score <= improvementThreshold);
  return [deliveryAvg, interpersonalAvg, strategicAvg, overallAvg,
          strengths.map(s => s.competencyId).sort(), improvements.map(s => s.competencyId).sort()];
})));
""" % (json.dumps(categories), json.dumps(cases))
    theirs = json.loads(subprocess.run(["node"], input=script, capture_output=True, check=True, text=True).stdout)
    for scores, expected in zip(cases, theirs):
        rows = [{"competency_id": s["competencyId"], "score": s["score"], "category": categories[s["competencyId"]]}
                for s in scores]
        ours = msgspec.to_builtins(summarise(rows, None, False))  # type: ignore[arg-type]
        averages = ours["averages"]
        assert [averages["delivery"], averages["interpersonal"], averages["strategic"], averages["overall"],
                sorted(s["competency_id"] for s in ours["strengths"]),
                sorted(s["competency_id"] for s in ours["improvements"])] == expected


# --- re-assessment, spec §13 ----------------------------------------------------------------------


def test_reassessment_is_due_a_year_after_the_oldest_score(full_seed: Path, pinned, new_reader) -> None:
    reader = reader_at(new_reader, pinned, "2025-03-08T07:30:00Z")
    saved(reader, {"influencing": 3})
    travel(reader, pinned, "2025-09-01T12:00:00Z")
    saved(reader, {"negotiating": 4})
    travel(reader, pinned, "2026-03-08T23:59:59.999Z")  # DATE('now', '-1 year') = 2025-03-08: not before it
    body = summary(reader)
    assert (body["reassessment_due"], body["oldest_assessment"]) == (False, "2025-03-08T07:30:00.000Z")
    travel(reader, pinned, "2026-03-09T00:00:00Z")  # 2025-03-09: the oldest score is now older
    assert summary(reader)["reassessment_due"] is True
    saved(reader, {"influencing": 3})  # re-assessed: the oldest is the September one
    body = summary(reader)
    assert (body["reassessment_due"], body["oldest_assessment"]) == (False, "2025-09-01T12:00:00.000Z")


@pytest.mark.parametrize(
    ("assessed", "now", "due"),
    [
        ("2025-03-08T00:00:00.000Z", "2026-03-08T12:00:00Z", False),  # exactly at the bound
        ("2025-03-07T23:59:59.999Z", "2026-03-08T00:00:00Z", True),  # a millisecond before it
        # 29 February: SQLite's date('2028-02-29', '-1 year') is 2027-03-01.
        ("2027-02-28T23:59:59.999Z", "2028-02-29T12:00:00Z", True),
        ("2027-03-01T00:00:00.000Z", "2028-02-29T12:00:00Z", False),
        # Assessed on 29 February 2028: not due on 28 February 2029, due from 1 March.
        ("2028-02-29T09:00:00.000Z", "2029-02-28T23:59:59.999Z", False),
        ("2028-02-29T09:00:00.000Z", "2029-03-01T00:00:00Z", True),
    ],
)
def test_reassessment_edges(full_seed: Path, pinned, new_reader, assessed: str, now: str, due: bool) -> None:
    reader = reader_at(new_reader, pinned, assessed)
    saved(reader, {"strategic-thinking": 4})
    travel(reader, pinned, now)
    assert summary(reader)["reassessment_due"] is due


def test_the_bound_is_sqlites_date_minus_one_year() -> None:
    conn = sqlite3.connect(":memory:")
    try:
        day = date(2023, 1, 1)
        while day < date(2033, 1, 1):
            moment = datetime(day.year, day.month, day.day, 23, 59, 59, 999000, tzinfo=timezone.utc)
            theirs = conn.execute("SELECT date(?, '-1 year')", (timeutil.iso(moment),)).fetchone()[0]
            assert reassessment_bound(moment) == f"{theirs}T00:00:00.000Z", day
            day += timedelta(days=1)
    finally:
        conn.close()


def test_the_specs_literal_sql_with_the_real_clock_agrees(full_seed: Path, new_reader, db_path: Path) -> None:
    r = new_reader()
    r.start()
    owner = r.get("/api/me").json()["id"]
    conn = connect_sync(db_path)
    try:
        for _ in range(3):  # a UTC midnight between our clock and SQLite's would make them differ
            now = timeutil.now()
            bound = datetime.fromisoformat(reassessment_bound(now).replace("Z", "+00:00"))
            for offset in (timedelta(milliseconds=-1), timedelta(0), timedelta(milliseconds=1), timedelta(days=-400),
                           timedelta(days=200)):
                conn.execute("DELETE FROM user_competency_scores")
                conn.execute("INSERT INTO user_competency_scores VALUES (?, ?, 'influencing', 3, ?)",
                             (str(uuid.uuid4()), owner, timeutil.iso(bound + offset)))
                theirs = conn.execute(SPEC_REASSESSMENT, (owner,)).fetchone()
                ours = conn.execute(Q.competency_reassessment, (owner, reassessment_bound(now))).fetchone()
                assert tuple(ours) == tuple(theirs), offset
            if timeutil.now().date() == now.date():
                break
        conn.execute("DELETE FROM user_competency_scores")
        assert tuple(conn.execute(Q.competency_reassessment, (owner, reassessment_bound(now))).fetchone()) == tuple(
            conn.execute(SPEC_REASSESSMENT, (owner,)).fetchone()) == (None, 0)
    finally:
        conn.close()


# --- performance ---------------------------------------------------------------------------------


def sql(db_path: Path, statement: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
    conn = connect_sync(db_path)
    try:
        return conn.execute(statement, params).fetchall()
    finally:
        conn.close()


@pytest.mark.parametrize("name", ["competency_scores_of_user", "competency_reassessment", "known_competencies"])
def test_competency_queries_never_scan_a_user_table(conn: sqlite3.Connection, name: str) -> None:
    plan = query_plan(conn, Q[name])
    assert scanned_user_tables(Q[name], plan) == [], plan
    if name.startswith("competency_"):
        assert any("USING INDEX idx_user_competency_scores_user" in line for line in plan), plan


@pytest.mark.parametrize("name", ["competencies_among", "competencies_all_known", "upsert_scores"])
def test_saving_scans_no_user_table(conn: sqlite3.Connection, name: str) -> None:
    plan = query_plan(conn, Q[name])
    assert scanned_user_tables(Q[name], plan) == [], plan


def test_each_request_is_one_read_batch_and_saving_one_more_write(reader: Reader, db_jobs: JobLog) -> None:
    module = competencies.__name__
    saved(reader, {"influencing": 3, "negotiating": 4})
    assert db_jobs.mine() == [("read", module), ("write", module)]
    db_jobs.clear()
    reader.get("/api/competencies/scores")
    assert db_jobs.mine() == [("read", module)]
    db_jobs.clear()
    summary(reader)
    assert db_jobs.mine() == [("read", module)]
    db_jobs.clear()
    assert saved(reader, {}) == reader.get("/api/competencies/scores").json()  # nothing to write: one read
    assert db_jobs.mine() == [("read", module)] * 2
    db_jobs.clear()
    assert save(reader, {"influencing": 3, "influencing-people": 4}).status_code == 422  # refused after the read
    assert save(reader, {"influencing": 9}).status_code == 422  # refused before any batch
    assert db_jobs.mine() == [("read", module)]


# --- the write guards itself (tests/test_engine.py::drive_with_interference) --------------------


def test_a_competency_removed_between_read_and_write_stops_the_whole_save(full_seed: Path) -> None:
    """An editor's re-seed that drops a competency between a save's read and its write: the
    write batch refuses (the engine then runs the save again, which answers unknown_competency)."""
    from app.db.connection import run_batch
    from app.db.engine import Stmt
    from tests.test_engine import STAMP, drive_with_interference, principal

    conn = connect_sync(full_seed)
    try:
        ann = principal(conn, "ann")
        work = competencies.save_scores_work(ann, [("influencing", 3), ("negotiating", 4)], STAMP)

        def meanwhile(c: sqlite3.Connection) -> None:
            run_batch(c, [Stmt("DELETE FROM competency_levels WHERE competency_id = 'negotiating'"),
                          Stmt("DELETE FROM competencies WHERE id = 'negotiating'")], True)

        assert drive_with_interference(conn, work, meanwhile) == "competency_gone"
        assert conn.execute("SELECT count(*) FROM user_competency_scores").fetchone()[0] == 0
    finally:
        conn.close()


def test_two_tabs_saving_different_competencies_keep_both(full_seed: Path) -> None:
    """Each save writes only the competencies it names: another tab's save between our read
    and our write is neither lost nor overwritten."""
    from app.db.connection import run_batch
    from app.db.engine import Write
    from tests.test_engine import STAMP, principal

    conn = connect_sync(full_seed)
    try:
        ann = principal(conn, "ann")
        ours = competencies.save_scores_work(ann, [("influencing", 3)], STAMP)
        batch = next(ours)
        results = run_batch(conn, batch.statements, False)
        theirs = competencies.save_scores_work(ann, [("negotiating", 5)], STAMP)
        their_read = next(theirs)
        write = theirs.send(run_batch(conn, their_read.statements, False))
        assert isinstance(write, Write)
        run_batch(conn, write.statements, True)
        write = ours.send(results)
        assert isinstance(write, Write)
        after = run_batch(conn, write.statements, True)
        assert [(r["competency_id"], r["score"]) for r in after[-1].rows] == [("influencing", 3), ("negotiating", 5)]
    finally:
        conn.close()
