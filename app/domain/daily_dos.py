"""Daily Dos: the resume card and the due reminders of the reader's unlocked tools (spec §11).

Rules (DESIGN.md "Daily Dos", docs/daily-dos.md):
- while `workbook_complete` is 0, a "Resume Workbook" card comes first, naming the next
  exercise (spec §12 by place, `Q.next_exercise`) by its title; no next exercise, no card;
- then the reminders of active tools that have one and that the reader has unlocked: daily
  ones with no instance created today, weekly ones with none since the start of the day 7 days
  ago, monthly ones with none since the start of the day 30 days ago; daily, then weekly, then
  monthly, each in the order the workbook unlocks them;
- "today" is the reader's local calendar day when the browser names its IANA time zone, and
  the UTC day otherwise (then the answers are exactly those of the spec's SQL). The day bounds
  are computed here and passed to the SQL as canonical UTC timestamps, so the
  `(user_id, tool_type)` index serves and the same SQL runs on D1.
The whole list is one read job: the page pays one thread hop for it.
"""

from __future__ import annotations

import functools
import sqlite3
import zoneinfo
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from typing import Any

from app import timeutil
from app.db.connection import Database
from app.db.queries import Q
from app.domain.errors import Invalid, NotFound
from app.domain.sessions import Principal
from app.domain.workbook import place_label, title_of

# IANA names are at most 32 characters today; the cap keeps a hostile query string short.
MAX_ZONE_NAME = 64
# Read once: the names this installation's tz database knows (system zoneinfo or `tzdata`).
# Checking membership first means no request ever makes zoneinfo look for a file by a
# name a client made up.
KNOWN_ZONES: frozenset[str] = frozenset(zoneinfo.available_timezones())

WEEKLY_DAYS = 7
MONTHLY_DAYS = 30
_ONE_SECOND = timedelta(seconds=1)


def zone_named(name: str | None) -> tzinfo:
    """The reader's time zone; UTC when the browser sent none; Invalid for unknown names."""
    if name is None:
        return timezone.utc
    if len(name) > MAX_ZONE_NAME or name not in KNOWN_ZONES:
        shown = name if len(name) <= MAX_ZONE_NAME else name[:MAX_ZONE_NAME] + "…"
        raise Invalid(f"{shown!r} is not an IANA time zone name such as Europe/Berlin.", code="invalid_time_zone")
    return zoneinfo.ZoneInfo(name)


def start_of_day(day: date, zone: tzinfo) -> datetime:
    """The earliest instant (in UTC) whose local date in `zone` is `day`.

    Usually local midnight. When midnight repeats (clocks go back at 01:00 to 00:00) that is
    its first occurrence; when midnight does not exist (clocks jump from 00:00 to 01:00) the
    day begins at the jump. Both readings of midnight (fold 0 and 1) bracket the jump, and
    transitions fall on whole seconds, so a short bisection finds it exactly.
    """
    midnight = datetime.combine(day, time(), tzinfo=zone)
    early, late = sorted(m.astimezone(timezone.utc) for m in (midnight, midnight.replace(fold=1)))
    if early.astimezone(zone).date() >= day:
        return early
    # A gap: `early` still belongs to the day before, `late` already to this day (or, when a
    # whole day is skipped, as in Samoa on 2011-12-30, to the next one).
    while late - early > _ONE_SECOND:
        middle = early + ((late - early) // 2 // _ONE_SECOND) * _ONE_SECOND
        if middle.astimezone(zone).date() >= day:
            late = middle
        else:
            early = middle
    return late


@dataclass(frozen=True)
class DayBounds:
    """The reader's calendar turned into canonical UTC timestamps for the reminder queries."""

    start_of_today: str
    start_of_tomorrow: str
    start_of_week: str  # the start of the local day 7 days ago
    start_of_month: str  # the start of the local day 30 days ago


def day_bounds(moment: datetime, zone: tzinfo) -> DayBounds:
    return _bounds_of_day(moment.astimezone(zone).date(), zone)


@functools.lru_cache(maxsize=1024)
def _bounds_of_day(today: date, zone: tzinfo) -> DayBounds:
    """The bounds depend only on the local date and the zone: worked out once a day per zone,
    not on every request (they cost more than the reminder queries)."""

    def start(days: int) -> str:
        return timeutil.iso(start_of_day(today + timedelta(days=days), zone))

    return DayBounds(start(0), start(1), start(-WEEKLY_DAYS), start(-MONTHLY_DAYS))


def resume_card(place: sqlite3.Row, first_block: str | None) -> dict[str, Any]:
    return {
        "id": "resume-workbook",
        "type": "resume",
        "title": "Resume Workbook",
        "subtitle": title_of(first_block, place_label(place)),
        "action": {"label": "Continue →", "href": f"/workbook/{place['full_exercise_id']}"},
    }


def reminder_card(tool: sqlite3.Row) -> dict[str, Any]:
    """spec §11 transformToolReminders, with a link where the spec navigates."""
    return {
        "id": tool["id"],
        "type": tool["id"],
        "title": tool["singular_name"],
        "subtitle": tool["reminder_prompt"],
        "action": {"label": f"{tool['singular_name']} →", "href": f"/tools/{tool['id']}"},
    }


def read_daily_dos(conn: sqlite3.Connection, user_id: str, bounds: DayBounds) -> list[dict[str, Any]]:
    user = conn.execute(Q.reader_workbook_complete, (user_id,)).fetchone()
    if user is None:
        raise NotFound("No such reader.")
    cards: list[dict[str, Any]] = []
    if not user["workbook_complete"]:
        place = conn.execute(Q.next_exercise, (user_id,)).fetchone()
        if place is not None:
            first = conn.execute(Q.exercise_blocks, (place["full_exercise_id"], user_id)).fetchone()
            cards.append(resume_card(place, first["content_text"] if first else None))
    due = [
        *conn.execute(Q.daily_reminders, (user_id, bounds.start_of_today, bounds.start_of_tomorrow)),
        *conn.execute(Q.weekly_reminders, (user_id, bounds.start_of_week)),
        *conn.execute(Q.monthly_reminders, (user_id, bounds.start_of_month)),
    ]
    cards.extend(reminder_card(tool) for tool in due)
    return cards


async def daily_dos(db: Database, principal: Principal, time_zone: str | None = None) -> list[dict[str, Any]]:
    """The reader's Daily Dos for their today (`time_zone` an IANA name, or None for UTC)."""
    bounds = day_bounds(timeutil.now(), zone_named(time_zone))
    return await db.read(lambda conn: read_daily_dos(conn, principal.user_id, bounds))
