"""Daily Dos: the resume card and the due reminders of the reader's unlocked tools (spec §11).

Rules (docs/daily-dos.md):
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
The whole list is one read batch (app/db/engine.py): the reader's flag, their next exercise
and its blocks, and the three reminder queries, in one round trip.
"""

from __future__ import annotations

import functools
import zoneinfo
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone, tzinfo

import msgspec

from app import timeutil
from app.db.engine import Engine, Read, Row, Stmt, Work
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


class DailyDoAction(msgspec.Struct, frozen=True):
    """Where a card leads: the page's link and its label."""

    label: str
    href: str


class DailyDo(msgspec.Struct, frozen=True):
    """One Daily Do: the resume card (`type` "resume") or a tool's reminder (`type` its id)."""

    id: str
    type: str
    title: str
    subtitle: str | None
    action: DailyDoAction


def resume_card(place: Row, first_block: str | None) -> DailyDo:
    return DailyDo(
        id="resume-workbook",
        type="resume",
        title="Resume Workbook",
        subtitle=title_of(first_block, place_label(place)),
        action=DailyDoAction("Continue →", f"/workbook/{place['full_exercise_id']}"),
    )


def reminder_card(tool: Row) -> DailyDo:
    """spec §11 transformToolReminders, with a link where the spec navigates."""
    return DailyDo(
        id=tool["id"],
        type=tool["id"],
        title=tool["singular_name"],
        subtitle=tool["reminder_prompt"],
        action=DailyDoAction(f"{tool['singular_name']} →", f"/tools/{tool['id']}"),
    )


def daily_dos_work(principal: Principal, bounds: DayBounds) -> Work[list[DailyDo]]:
    """Everything in one batch: the resume card's reads do not wait for the flag (the next
    exercise's blocks come through `exercise_blocks` with NULL: the reader's next place)."""
    user = principal.user_id
    flag, place, blocks, daily, weekly, monthly = yield Read(
        Stmt(Q.reader_workbook_complete, (user,)),
        Stmt(Q.next_exercise, (user,)),
        Stmt(Q.exercise_blocks, (None, user)),
        Stmt(Q.daily_reminders, (user, bounds.start_of_today, bounds.start_of_tomorrow)),
        Stmt(Q.weekly_reminders, (user, bounds.start_of_week)),
        Stmt(Q.monthly_reminders, (user, bounds.start_of_month)),
    )
    reader = flag.one()
    if reader is None:
        raise NotFound("No such reader.")
    cards: list[DailyDo] = []
    next_place = place.one()
    if not reader["workbook_complete"] and next_place is not None:
        first = blocks.one()
        cards.append(resume_card(next_place, first["content_text"] if first else None))
    cards.extend(reminder_card(tool) for tool in (*daily.rows, *weekly.rows, *monthly.rows))
    return cards


async def daily_dos(db: Engine, principal: Principal, time_zone: str | None = None) -> list[DailyDo]:
    """The reader's Daily Dos for their today (`time_zone` an IANA name, or None for UTC)."""
    bounds = day_bounds(timeutil.now(), zone_named(time_zone))
    return await db.query(lambda: daily_dos_work(principal, bounds), principal)
