"""Daily Dos (spec §11): the resume card, due reminders, and the reader's own calendar."""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from app import timeutil
from app.db.connection import connect_sync
from app.db.queries import Q
from app.domain import daily_dos
from app.domain.daily_dos import DayBounds, day_bounds, start_of_day
from tests.conftest import JobLog
from tests.helpers import Reader

pytestmark = pytest.mark.both_engines

# --- the spec's literal SQL (spec §11), to compare against ------------------------------------

SPEC_UNLOCKED = """
  AND EXISTS (
    SELECT 1 FROM exercise_responses er
    JOIN exercise_sequence es ON er.full_exercise_id = es.full_exercise_id
    WHERE er.user_id = ?
      AND es.unlocks_tool = tt.id
  )"""
SPEC_DAILY = f"""SELECT tt.id, tt.singular_name, tt.reminder_prompt
FROM tool_types tt
WHERE tt.has_reminder = 1
  AND tt.reminder_frequency = 'daily'
  AND tt.is_active = 1{SPEC_UNLOCKED}
  AND NOT EXISTS (
    SELECT 1 FROM tool_instances ti
    WHERE ti.user_id = ?
      AND ti.tool_type = tt.id
      AND DATE(ti.created_at) = DATE('now')
  )"""
SPEC_WEEKLY = f"""SELECT tt.id, tt.singular_name, tt.reminder_prompt
FROM tool_types tt
WHERE tt.has_reminder = 1
  AND tt.reminder_frequency = 'weekly'
  AND tt.is_active = 1{SPEC_UNLOCKED}
  AND NOT EXISTS (
    SELECT 1 FROM tool_instances ti
    WHERE ti.user_id = ?
      AND ti.tool_type = tt.id
      AND ti.created_at >= DATE('now', '-7 days')
  )"""
SPEC_MONTHLY = SPEC_WEEKLY.replace("'weekly'", "'monthly'").replace("'-7 days'", "'-30 days'")

# The full sample workbook's tools: where they unlock and how often they remind.
DAILY, WEEKLY, MONTHLY = "flow-tracker", "failure-reframer", "budget-calculator"


# --- fixtures and helpers -------------------------------------------------------------------


@pytest.fixture
def explorer(full_seed: Path, pinned, new_reader) -> Reader:
    """A reader who answered up to 1.4.1: List (no reminder), Flow Log (daily), Reframe
    (weekly) and Budget (monthly) are unlocked; SOARED Story, Networking Prep and Job Tracker
    are still locked."""
    r = new_reader()
    r.start()
    answer_through(r, "1.4.1.v1")
    return r


def sql(db_path: Path, statement: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
    conn = connect_sync(db_path)
    try:
        return conn.execute(statement, params).fetchall()
    finally:
        conn.close()


def user_id(r: Reader) -> str:
    return r.get("/api/me").json()["id"]


def answer_through(r: Reader, last: str) -> None:
    """Answer every exercise in workbook order, up to and including `last`."""
    outline = r.get("/api/workbook").json()
    for exercise in (e for p in outline["parts"] for m in p["modules"] for e in m["exercises"]):
        response = r.put(f"/api/exercises/{exercise['full_exercise_id']}/response", {"response": {"text": "noted"}})
        assert response.status_code == 200, response.text
        if exercise["full_exercise_id"] == last:
            return
    raise AssertionError(f"{last} is not in the workbook")


def add_instance(db_path: Path, owner: str, tool: str, created_at: str) -> str:
    """A tool instance as the tools API stores one (sealed content, keyed hash)."""
    instance_id = str(uuid.uuid4())
    sealed = json.dumps({"entries": {"$enc": "v1", "k": "k" * 22, "n": "n" * 16, "c": "c" * 40}})
    sql(db_path, """INSERT INTO tool_instances
        (id, user_id, tool_type, origin, content_json, content_hash, created_at, updated_at)
        VALUES (?, ?, ?, 'standalone', ?, ?, ?, ?)""",
        (instance_id, owner, tool, sealed, hashlib.sha256(instance_id.encode()).hexdigest(), created_at, created_at))
    return instance_id


def cards(r: Reader, tz: str | None = None) -> list[dict[str, Any]]:
    response = r.get("/api/daily-dos", params={"tz": tz} if tz else None)
    assert response.status_code == 200, response.text
    return response.json()


def due(r: Reader, tz: str | None = None) -> list[str]:
    """The ids of the reminder cards (the resume card left out)."""
    return [c["id"] for c in cards(r, tz) if c["type"] != "resume"]


# --- the cards ----------------------------------------------------------------------------------


def test_a_new_reader_sees_only_the_resume_card(full_seed: Path, new_reader) -> None:
    r = new_reader()
    r.start()
    assert cards(r) == [{
        "id": "resume-workbook", "type": "resume", "title": "Resume Workbook", "subtitle": "Your Career So Far",
        "action": {"label": "Continue →", "href": "/workbook/1.1.1.v1"},
    }]


def test_resume_card_then_daily_weekly_monthly_reminders(explorer: Reader) -> None:
    assert cards(explorer) == [
        {"id": "resume-workbook", "type": "resume", "title": "Resume Workbook", "subtitle": "Runway and Risk",
         "action": {"label": "Continue →", "href": "/workbook/1.4.2.v1"}},
        {"id": "flow-tracker", "type": "flow-tracker", "title": "Flow Log", "subtitle": "Track your flow today",
         "action": {"label": "Flow Log →", "href": "/tools/flow-tracker"}},
        {"id": "failure-reframer", "type": "failure-reframer", "title": "Reframe",
         "subtitle": "Reframe one setback from this week", "action": {"label": "Reframe →", "href": "/tools/failure-reframer"}},
        {"id": "budget-calculator", "type": "budget-calculator", "title": "Budget",
         "subtitle": "Check your numbers for this month", "action": {"label": "Budget →", "href": "/tools/budget-calculator"}},
    ]


def test_locked_tools_never_appear_and_unlocked_ones_follow_the_workbook(explorer: Reader, db_path: Path) -> None:
    assert "soared-story" not in due(explorer) and "networking-prep" not in due(explorer)
    # Even with instances (say, imported) a locked tool stays out.
    add_instance(db_path, user_id(explorer), "soared-story", "2025-01-01T00:00:00.000Z")
    assert "soared-story" not in due(explorer)
    answer_through(explorer, "2.2.2.v1")
    # SOARED Story (monthly, unlocked at 2.2.2) is due: old instances are beyond 30 days.
    assert due(explorer) == [DAILY, WEEKLY, MONTHLY, "soared-story"]


def test_tools_without_a_reminder_or_inactive_never_appear(explorer: Reader, db_path: Path) -> None:
    assert "list-builder" not in due(explorer)  # unlocked at 1.1.1, has_reminder = 0
    sql(db_path, "UPDATE tool_types SET is_active = 0 WHERE id = ?", (WEEKLY,))
    sql(db_path, "UPDATE tool_types SET has_reminder = 0 WHERE id = ?", (MONTHLY,))
    assert due(explorer) == [DAILY]


def test_a_finished_workbook_shows_no_resume_card(seeded: Path, new_reader) -> None:
    r = new_reader()
    r.start()
    answer_through(r, "1.2.2.v1")  # the small workbook, all of it: flow-tracker unlocked at 1.2.1
    assert r.get("/api/me").json()["workbook_complete"] is True
    assert [c["id"] for c in cards(r)] == ["flow-tracker"]


def test_no_resume_card_when_there_is_no_next_exercise(seeded: Path, new_reader, db_path: Path) -> None:
    """After a content change an unfinished reader can have answered every remaining place."""
    r = new_reader()
    r.start()
    answer_through(r, "1.2.2.v1")
    sql(db_path, "UPDATE users SET workbook_complete = 0 WHERE id = ?", (user_id(r),))
    assert [c["id"] for c in cards(r)] == ["flow-tracker"]


def test_resume_card_names_the_next_exercise_by_its_title(seeded: Path, new_reader) -> None:
    r = new_reader()
    r.start()
    answer_through(r, "1.1.2.v1")
    card = cards(r)[0]
    assert (card["subtitle"], card["action"]["href"]) == ("Flow", "/workbook/1.2.1.v1")


def test_two_readers_never_see_each_others_reminders(full_seed: Path, pinned, new_reader, db_path: Path) -> None:
    ann, bob = new_reader(), new_reader()
    ann.start()
    bob.start()
    answer_through(ann, "1.2.2.v1")
    assert due(ann) == [DAILY] and due(bob) == []  # bob has unlocked nothing
    answer_through(bob, "1.2.2.v1")
    add_instance(db_path, user_id(ann), DAILY, "2026-03-08T07:00:00.000Z")
    assert due(ann) == [] and due(bob) == [DAILY]
    assert cards(bob)[0]["subtitle"] == cards(ann)[0]["subtitle"] == "Crafting Today's Job"


# --- today, this week, this month --------------------------------------------------------------


def test_a_daily_reminder_rests_for_the_day_once_logged(explorer: Reader, pinned, db_path: Path) -> None:
    add_instance(db_path, user_id(explorer), DAILY, "2026-03-08T00:00:00.000Z")
    assert DAILY not in due(explorer)
    pinned.set("2026-03-08T23:59:59.999Z")
    assert DAILY not in due(explorer)
    pinned.set("2026-03-09T00:00:00.000Z")
    assert DAILY in due(explorer)


def test_an_instance_from_the_future_does_not_mark_today_done(explorer: Reader, db_path: Path) -> None:
    """As in the spec, a daily reminder looks at today only (a clock-skewed device may write tomorrow)."""
    add_instance(db_path, user_id(explorer), DAILY, "2026-03-09T00:00:00.000Z")
    assert DAILY in due(explorer)


@pytest.mark.parametrize(
    ("tz", "now", "created", "due_locally", "due_in_utc"),
    [
        # West of UTC: logged at 23:30 on 9 March in Los Angeles, which is already 10 March in
        # UTC. The next morning it is due again locally; UTC would call it today's.
        ("America/Los_Angeles", "2026-03-10T16:00:00Z", "2026-03-10T06:30:00.000Z", True, False),
        # East of UTC: logged at 00:30 on 8 March in Tokyo (still 7 March in UTC).
        ("Asia/Tokyo", "2026-03-08T07:30:00Z", "2026-03-07T15:30:00.000Z", False, True),
        # ...and at 23:30 on 7 March in Tokyo: yesterday in both calendars.
        ("Asia/Tokyo", "2026-03-08T07:30:00Z", "2026-03-07T14:30:00.000Z", True, True),
        # Auckland (UTC+13 in March): logged at 00:30 local, 11:30 the day before in UTC.
        ("Pacific/Auckland", "2026-03-08T07:30:00Z", "2026-03-07T11:30:00.000Z", False, True),
        # Auckland at 23:30 the day before, local: due again today locally.
        ("Pacific/Auckland", "2026-03-08T07:30:00Z", "2026-03-07T10:30:00.000Z", True, True),
    ],
)
def test_today_is_the_readers_local_day(explorer: Reader, pinned, db_path: Path, tz: str, now: str, created: str,
                                        due_locally: bool, due_in_utc: bool) -> None:
    pinned.set(now)
    add_instance(db_path, user_id(explorer), DAILY, created)
    assert (DAILY in due(explorer, tz)) is due_locally
    assert (DAILY in due(explorer)) is due_in_utc
    assert (DAILY in due(explorer, "UTC")) is due_in_utc  # naming UTC is the same as naming nothing


def test_weekly_window_starts_at_the_local_day_seven_days_ago(explorer: Reader, db_path: Path) -> None:
    owner = user_id(explorer)  # the clock: 2026-03-08 07:30 UTC; 7 days ago is 1 March
    add_instance(db_path, owner, WEEKLY, "2026-02-28T23:59:59.999Z")
    assert WEEKLY in due(explorer)
    add_instance(db_path, owner, WEEKLY, "2026-03-01T00:00:00.000Z")  # exactly at the bound: counts
    assert WEEKLY not in due(explorer)
    # In Tokyo, 1 March starts at 15:00 UTC on 28 February.
    sql(db_path, "DELETE FROM tool_instances")
    add_instance(db_path, owner, WEEKLY, "2026-02-28T14:59:59.999Z")
    assert WEEKLY in due(explorer, "Asia/Tokyo")
    add_instance(db_path, owner, WEEKLY, "2026-02-28T15:00:00.000Z")
    assert WEEKLY not in due(explorer, "Asia/Tokyo")


def test_monthly_window_starts_at_the_local_day_thirty_days_ago(explorer: Reader, pinned, db_path: Path) -> None:
    owner = user_id(explorer)  # 30 days before 8 March 2026 is 6 February
    add_instance(db_path, owner, MONTHLY, "2026-02-05T23:59:59.999Z")
    assert MONTHLY in due(explorer)
    add_instance(db_path, owner, MONTHLY, "2026-02-06T00:00:00.000Z")
    assert MONTHLY not in due(explorer)
    # In Los Angeles (PST, UTC−8 in February) 6 February starts at 08:00 UTC.
    pinned.set("2026-03-08T20:00:00Z")  # 13:00 PDT on 8 March
    assert MONTHLY in due(explorer, "America/Los_Angeles")
    add_instance(db_path, owner, MONTHLY, "2026-02-06T08:00:00.000Z")
    assert MONTHLY not in due(explorer, "America/Los_Angeles")


# --- daylight saving time -------------------------------------------------------------------


def test_the_23_hour_day_in_new_york(explorer: Reader, pinned, db_path: Path) -> None:
    """8 March 2026: New York springs forward; the day runs from 05:00 UTC to 04:00 UTC."""
    owner, tz = user_id(explorer), "America/New_York"
    add_instance(db_path, owner, DAILY, "2026-03-08T04:59:59.999Z")  # 23:59:59.999 EST on 7 March
    pinned.set("2026-03-09T03:30:00Z")  # 23:30 EDT on 8 March: the last half hour of the day
    assert DAILY in due(explorer, tz)
    add_instance(db_path, owner, DAILY, "2026-03-08T05:00:00.000Z")  # local midnight
    assert DAILY not in due(explorer, tz)
    pinned.set("2026-03-09T04:00:00Z")  # midnight EDT: a new day, 23 hours after the last one
    assert DAILY in due(explorer, tz)


def test_the_25_hour_day_in_new_york(full_seed: Path, pinned, new_reader, db_path: Path) -> None:
    """1 November 2026: New York falls back; the day runs from 04:00 UTC to 05:00 UTC."""
    pinned.set("2026-11-01T12:00:00Z")
    r = new_reader()
    r.start()
    answer_through(r, "1.2.2.v1")
    owner, tz = user_id(r), "America/New_York"
    add_instance(db_path, owner, DAILY, "2026-11-01T04:00:00.000Z")  # 00:00 EDT on 1 November
    pinned.set("2026-11-02T04:30:00Z")  # 23:30 EST on 1 November, 24.5 hours after its midnight
    assert DAILY not in due(r, tz)
    pinned.set("2026-11-02T05:00:00Z")
    assert DAILY in due(r, tz)


def test_a_week_across_the_spring_change_is_seven_local_days(explorer: Reader, pinned, db_path: Path) -> None:
    """Seven days before 10 March is 3 March, which began at 05:00 UTC (EST), not 04:00."""
    owner, tz = user_id(explorer), "America/New_York"
    pinned.set("2026-03-10T12:00:00Z")
    add_instance(db_path, owner, WEEKLY, "2026-03-03T04:30:00.000Z")  # 23:30 EST on 2 March
    assert WEEKLY in due(explorer, tz)
    add_instance(db_path, owner, WEEKLY, "2026-03-03T05:00:00.000Z")
    assert WEEKLY not in due(explorer, tz)


@pytest.mark.parametrize(
    ("zone", "moment", "expected"),
    [
        # New York, spring forward (a 23-hour 8 March) and fall back (a 25-hour 1 November).
        ("America/New_York", "2026-03-08T12:00:00Z", DayBounds(
            "2026-03-08T05:00:00.000Z", "2026-03-09T04:00:00.000Z", "2026-03-01T05:00:00.000Z", "2026-02-06T05:00:00.000Z")),
        ("America/New_York", "2026-11-01T12:00:00Z", DayBounds(
            "2026-11-01T04:00:00.000Z", "2026-11-02T05:00:00.000Z", "2026-10-25T04:00:00.000Z", "2026-10-02T04:00:00.000Z")),
        # Berlin changes at 02:00/03:00 local: 29 March has 23 hours, 25 October 25.
        ("Europe/Berlin", "2026-03-29T12:00:00Z", DayBounds(
            "2026-03-28T23:00:00.000Z", "2026-03-29T22:00:00.000Z", "2026-03-21T23:00:00.000Z", "2026-02-26T23:00:00.000Z")),
        ("Europe/Berlin", "2026-10-25T12:00:00Z", DayBounds(
            "2026-10-24T22:00:00.000Z", "2026-10-25T23:00:00.000Z", "2026-10-17T22:00:00.000Z", "2026-09-24T22:00:00.000Z")),
        # East and west of UTC on a plain day.
        ("Asia/Tokyo", "2026-03-08T07:30:00Z", DayBounds(
            "2026-03-07T15:00:00.000Z", "2026-03-08T15:00:00.000Z", "2026-02-28T15:00:00.000Z", "2026-02-05T15:00:00.000Z")),
        ("America/Los_Angeles", "2026-03-08T07:30:00Z", DayBounds(
            "2026-03-07T08:00:00.000Z", "2026-03-08T08:00:00.000Z", "2026-02-28T08:00:00.000Z", "2026-02-05T08:00:00.000Z")),
        # Without a zone: UTC midnights, what the spec's DATE('now', ...) means.
        ("UTC", "2026-03-08T07:30:00Z", DayBounds(
            "2026-03-08T00:00:00.000Z", "2026-03-09T00:00:00.000Z", "2026-03-01T00:00:00.000Z", "2026-02-06T00:00:00.000Z")),
    ],
)
def test_day_bounds(zone: str, moment: str, expected: DayBounds) -> None:
    assert day_bounds(datetime.fromisoformat(moment.replace("Z", "+00:00")), ZoneInfo(zone)) == expected


def test_a_missing_midnight_starts_the_day_at_the_jump() -> None:
    """Havana and Santiago spring forward at midnight: the day begins at 01:00 local."""
    assert start_of_day(date(2026, 3, 8), ZoneInfo("America/Havana")) == datetime(2026, 3, 8, 5, tzinfo=timezone.utc)
    assert start_of_day(date(2026, 9, 6), ZoneInfo("America/Santiago")) == datetime(2026, 9, 6, 4, tzinfo=timezone.utc)
    for zone, day in (("America/Havana", date(2026, 3, 8)), ("America/Santiago", date(2026, 9, 6))):
        start = start_of_day(day, ZoneInfo(zone))
        assert start.astimezone(ZoneInfo(zone)).hour == 1
        assert (start - timedelta(milliseconds=1)).astimezone(ZoneInfo(zone)).date() == day - timedelta(days=1)


def test_a_repeated_midnight_starts_the_day_at_its_first_occurrence() -> None:
    """Havana falls back from 01:00 to 00:00 on 1 November 2026: midnight happens twice."""
    start = start_of_day(date(2026, 11, 1), ZoneInfo("America/Havana"))
    assert start == datetime(2026, 11, 1, 4, tzinfo=timezone.utc)  # 00:00 CDT, before the repeat
    assert (start - timedelta(milliseconds=1)).astimezone(ZoneInfo("America/Havana")).date() == date(2026, 10, 31)


def test_a_skipped_day_is_empty() -> None:
    """Samoa skipped 30 December 2011: that day starts where 31 December does."""
    apia = ZoneInfo("Pacific/Apia")
    assert start_of_day(date(2011, 12, 30), apia) == start_of_day(date(2011, 12, 31), apia)
    assert start_of_day(date(2011, 12, 31), apia) == datetime(2011, 12, 30, 10, tzinfo=timezone.utc)


# --- time zone names ------------------------------------------------------------------------


@pytest.mark.parametrize("tz", ["Mars/Olympus_Mons", "", "europe/berlin", "../../etc/passwd", "/etc/localtime",
                                "Europe/Berlin\x00", "A" * 65, "Europe/" + "B" * 5000])
def test_unknown_time_zones_are_refused(explorer: Reader, tz: str) -> None:
    response = explorer.get("/api/daily-dos", params={"tz": tz})
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "invalid_time_zone" and len(body["detail"]) < 200


def test_unknown_query_parameters_are_ignored_like_everywhere(explorer: Reader) -> None:
    assert explorer.get("/api/daily-dos", params={"zone": "Nope"}).status_code == 200


def test_daily_dos_need_a_session_and_are_never_cached(full_seed: Path, new_reader) -> None:
    r = new_reader()
    assert r.get("/api/daily-dos").status_code == 401
    r.start()
    assert r.get("/api/daily-dos").headers["cache-control"] == "no-store"


# --- the spec's own SQL agrees -------------------------------------------------------------------


def ours(conn: sqlite3.Connection, user: str, bounds: DayBounds) -> list[str]:
    return [r["id"] for r in (
        *conn.execute(Q.daily_reminders, (user, bounds.start_of_today, bounds.start_of_tomorrow)),
        *conn.execute(Q.weekly_reminders, (user, bounds.start_of_week)),
        *conn.execute(Q.monthly_reminders, (user, bounds.start_of_month)),
    )]


def spec(conn: sqlite3.Connection, user: str, now: str | None = None) -> list[str]:
    """The spec's literal queries, with 'now' as SQLite's clock or pinned to `now`."""
    found = []
    for query in (SPEC_DAILY, SPEC_WEEKLY, SPEC_MONTHLY):
        if now is None:
            rows = conn.execute(query, (user, user)).fetchall()
        else:
            rows = conn.execute(query.replace("'now'", "?3"), (user, user, now)).fetchall()
        found += sorted(r["id"] for r in rows)
    return found


def boundary_instants(bounds: DayBounds, now: datetime) -> list[str]:
    """Every bound, a millisecond either side of it, and the moment itself."""
    instants = [timeutil.iso(now)]
    for bound in (bounds.start_of_today, bounds.start_of_tomorrow, bounds.start_of_week, bounds.start_of_month):
        at = datetime.fromisoformat(bound.replace("Z", "+00:00"))
        instants += [timeutil.iso(at + timedelta(milliseconds=d)) for d in (-1, 0, 1)]
    return instants


def compare_with_spec(db_path: Path, user: str, now: datetime, *, pin: bool) -> int:
    conn = connect_sync(db_path)
    compared = 0
    try:
        bounds = day_bounds(now, timezone.utc)
        for created in boundary_instants(bounds, now):
            conn.execute("DELETE FROM tool_instances")
            for tool in (DAILY, WEEKLY, MONTHLY):
                conn.execute("""INSERT INTO tool_instances VALUES (?, ?, ?, 'standalone', '{}', ?, ?, ?)""",
                             (str(uuid.uuid4()), user, tool, uuid.uuid4().hex, created, created))
            theirs = spec(conn, user, timeutil.iso(now) if pin else None)
            assert sorted(ours(conn, user, bounds)) == sorted(theirs), (timeutil.iso(now), created)
            compared += 1
    finally:
        conn.close()
    return compared


@pytest.mark.parametrize("moment", [
    "2026-03-08T00:00:00.000Z", "2026-03-08T07:30:00.000Z", "2026-03-08T23:59:59.999Z",
    "2028-02-29T12:00:00.000Z", "2028-03-01T00:00:00.000Z", "2027-01-01T00:00:00.001Z", "2026-12-31T23:59:59.999Z",
])
def test_without_a_zone_the_reminders_are_the_specs(explorer: Reader, db_path: Path, moment: str) -> None:
    """The spec's DATE(...) conditions, with SQLite's 'now' pinned, agree with our UTC bounds."""
    now = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    assert compare_with_spec(db_path, user_id(explorer), now, pin=True) == 13


def test_the_specs_literal_sql_with_the_real_clock_agrees(full_seed: Path, new_reader, db_path: Path) -> None:
    r = new_reader()
    r.start()
    answer_through(r, "1.4.1.v1")
    owner = user_id(r)
    for _ in range(3):  # a UTC midnight between our clock and SQLite's would make them differ
        before = timeutil.now()
        compare_with_spec(db_path, owner, before, pin=False)
        if timeutil.now().date() == before.date():
            break


def test_the_api_answers_what_the_spec_answers(explorer: Reader, pinned, db_path: Path) -> None:
    owner = user_id(explorer)
    add_instance(db_path, owner, WEEKLY, "2026-03-02T10:00:00.000Z")
    conn = connect_sync(db_path)
    try:
        assert due(explorer) == spec(conn, owner, "2026-03-08T07:30:00.000Z") == [DAILY, MONTHLY]
    finally:
        conn.close()


# --- performance -------------------------------------------------------------------------------

USER_TABLES = {"users", "auth", "emails", "sessions", "user_settings", "user_modules", "exercise_responses",
               "tool_instances", "user_competency_scores", "exercise_skills"}


def query_plan(conn: sqlite3.Connection, statement: str) -> list[str]:
    highest = max([int(n) for n in re.findall(r"\?(\d+)", statement)] or [statement.count("?")])
    return [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + statement, (None,) * highest)]


def scanned_user_tables(statement: str, plan: list[str]) -> list[str]:
    """The user tables that a plan reads in full (by table name or by the query's alias)."""
    aliases = {m[1] or m[0]: m[0] for m in re.findall(r'(?:FROM|JOIN)\s+"?(\w+)"?(?:\s+(?!(?:ON|WHERE|JOIN|ORDER|GROUP|LIMIT|LEFT|INNER|CROSS)\b)(\w+))?', statement)}
    scanned = [m for line in plan for m in re.findall(r"^SCAN (\w+)", line)]
    return [aliases.get(name, name) for name in scanned if aliases.get(name, name) in USER_TABLES]


@pytest.mark.parametrize("name", ["reader_workbook_complete", "next_exercise", "exercise_blocks",
                                  "daily_reminders", "weekly_reminders", "monthly_reminders"])
def test_daily_dos_queries_never_scan_a_user_table(conn: sqlite3.Connection, name: str) -> None:
    plan = query_plan(conn, Q[name])
    assert scanned_user_tables(Q[name], plan) == [], plan
    if name.endswith("_reminders"):
        assert any(line.startswith("SEARCH ti USING INDEX idx_tool_instances_user_type") for line in plan), plan
        assert any(re.match(r"SEARCH er USING (COVERING )?INDEX idx_exercise_responses_user_", line) for line in plan), plan


def test_the_plan_checker_sees_a_scan(conn: sqlite3.Connection) -> None:
    statement = "SELECT count(*) FROM tool_instances ti WHERE ti.created_at >= ?"
    assert scanned_user_tables(statement, query_plan(conn, statement)) == ["tool_instances"]


def test_daily_dos_are_one_read_job(explorer: Reader, db_jobs: JobLog) -> None:
    assert len(cards(explorer, "Europe/Berlin")) == 4
    assert db_jobs.mine() == [("read", daily_dos.__name__)]
