"""Competency self-assessment: the reader's scores, their summary, and when to re-assess.

Rules (spec §3.3 and §13, docs/daily-dos.md "Competencies"):
- a score is an integer level 1–5 for a known competency; one score per reader and
  competency (the table's UNIQUE(user_id, competency_id)); saving again replaces it;
- every score written gets `assessed_at` = now, also when the level is unchanged: confirming
  a level is a new assessment, and it is what restarts the yearly re-assessment clock;
- a request is refused whole (nothing written) when any entry is out of range, unknown or
  repeated;
- the summary is spec §3.3 exactly: category averages, the overall average, thresholds
  `floor(overall ± 0.3)` in IEEE double arithmetic (as the spec's JavaScript computes them),
  strengths at or above the first, improvements at or below the second; averages are returned
  unrounded (the numbers the thresholds came from; the page rounds for display);
- re-assessment is due when the oldest score predates `DATE('now', '-1 year')` (spec §13),
  computed from the service clock with SQLite's own date arithmetic (29 February → 1 March).
Each request is one unit of work (app/db/engine.py): reading is one batch; saving reads which
competencies exist, then writes every score in one statement and reads them all back, in one
atomic batch guarded by those competencies still existing.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Sequence
from datetime import date, datetime, time, timezone
from typing import Literal

import msgspec

from app import timeutil
from app.db.engine import Engine, Read, Row, Stmt, Work, Write, guard_query
from app.db.queries import Q
from app.domain.errors import Invalid
from app.domain.sessions import Principal

Category = Literal["delivery", "interpersonal", "strategic"]
CATEGORIES: tuple[Category, ...] = ("delivery", "interpersonal", "strategic")
MIN_SCORE, MAX_SCORE = 1, 5
# Fifteen competencies today; room for an editor to add some without an API change.
MAX_SCORES_PER_REQUEST = 50
# spec §3.3: the margin around the overall average before flooring.
THRESHOLD_MARGIN = 0.3


# --- the shapes the API answers with -------------------------------------------------------------


class CompetencyScore(msgspec.Struct, frozen=True):
    """One of the reader's scores."""

    competency_id: str
    score: int
    assessed_at: str


class ScoredCompetency(msgspec.Struct, frozen=True):
    """A strength or an improvement of the summary."""

    competency_id: str
    score: int


class CompetencyAverages(msgspec.Struct, frozen=True):
    """The reader's average per category and overall, unrounded; null without scores."""

    delivery: float | None
    interpersonal: float | None
    strategic: float | None
    overall: float | None


class CompetencySummary(msgspec.Struct, frozen=True):
    """spec §3.3 over the reader's scores, and whether re-assessment (spec §13) is due."""

    averages: CompetencyAverages
    strengths: list[ScoredCompetency]
    improvements: list[ScoredCompetency]
    reassessment_due: bool
    oldest_assessment: str | None


def score_out(row: Row) -> CompetencyScore:
    return CompetencyScore(row["competency_id"], row["score"], row["assessed_at"])


# --- scores ------------------------------------------------------------------------------------


def scores_work(principal: Principal) -> Work[list[CompetencyScore]]:
    (rows,) = yield Read(Stmt(Q.competency_scores_of_user, (principal.user_id,)))
    return [score_out(r) for r in rows.rows]


async def scores(db: Engine, principal: Principal) -> list[CompetencyScore]:
    """The reader's scores, by category and the competencies' sort order."""
    return await db.query(lambda: scores_work(principal), principal)


def check_entries(entries: Sequence[tuple[str, int]]) -> None:
    """Refuse the whole request before touching the database when its shape is wrong."""
    if len(entries) > MAX_SCORES_PER_REQUEST:
        raise Invalid(f"At most {MAX_SCORES_PER_REQUEST} scores per request.", code="too_many_scores")
    seen: set[str] = set()
    for competency_id, score in entries:
        if isinstance(score, bool) or not isinstance(score, int) or not MIN_SCORE <= score <= MAX_SCORE:
            raise Invalid(f"A score is a level from {MIN_SCORE} to {MAX_SCORE}.", code="invalid_score")
        if competency_id in seen:
            raise Invalid(f"{competency_id!r} is scored twice in one request.", code="duplicate_competency")
        seen.add(competency_id)


def save_scores_work(principal: Principal, entries: Sequence[tuple[str, int]], stamp: str) -> Work[list[CompetencyScore]]:
    """Reads which of the competencies exist; writes every score in one upsert, guarded by
    them all still existing (an editor's re-seed may remove one meanwhile: the work then runs
    again and refuses it), and reads all the reader's scores back in the same batch."""
    user = principal.user_id
    if not entries:
        (current,) = yield Read(Stmt(Q.competency_scores_of_user, (user,)))
        return [score_out(r) for r in current.rows]
    ids = json.dumps([competency_id for competency_id, _ in entries])
    (known,) = yield Read(Stmt(Q.competencies_among, (ids,)))
    existing = set(known.column())
    unknown = [competency_id for competency_id, _ in entries if competency_id not in existing]
    if unknown:
        raise Invalid(f"No competency {unknown[0]!r}.", code="unknown_competency")
    rows = json.dumps([[str(uuid.uuid4()), competency_id, score] for competency_id, score in entries])
    results = yield Write(
        guard_query("competency_gone", Q.competencies_all_known, (ids, len(entries))),
        Stmt(Q.upsert_scores, (user, rows, stamp)),
        Stmt(Q.competency_scores_of_user, (user,)),
    )
    return [score_out(r) for r in results[-1].rows]


async def save_scores(db: Engine, principal: Principal, entries: Sequence[tuple[str, int]]) -> list[CompetencyScore]:
    """Upsert the given (competency_id, score) pairs, all stamped now; return all the reader's scores."""
    check_entries(entries)
    stamp = timeutil.now_iso()
    return await db.change(lambda: save_scores_work(principal, entries, stamp), principal)



# --- summary (spec §3.3) and re-assessment (spec §13) ---------------------------------------


def reassessment_bound(moment: datetime) -> str:
    """SQLite's `DATE(moment, '-1 year')` as a canonical timestamp (midnight UTC of that date).

    SQLite subtracts one from the year and normalises the date, so 29 February becomes
    1 March of the year before. Canonical timestamps compare with that midnight exactly as the
    spec's `assessed_at < DATE(...)` compares them with the bare date string.
    """
    today = moment.astimezone(timezone.utc).date()
    try:
        year_ago = today.replace(year=today.year - 1)
    except ValueError:  # 29 February
        year_ago = date(today.year - 1, 3, 1)
    return timeutil.iso(datetime.combine(year_ago, time(), tzinfo=timezone.utc))


def average(values: Sequence[int]) -> float | None:
    """The spec's JavaScript average: sum / count in doubles (exact sums, one rounding)."""
    return sum(values) / len(values) if values else None


def summarise(rows: Sequence[Row], oldest: str | None, due: bool) -> CompetencySummary:
    """spec §3.3 over the reader's scores (each row: competency_id, score, category)."""
    by_category = {category: average([r["score"] for r in rows if r["category"] == category])
                   for category in CATEGORIES}
    overall = average([r["score"] for r in rows])
    strengths: list[ScoredCompetency] = []
    improvements: list[ScoredCompetency] = []
    if overall is not None:  # with no scores the spec's thresholds are NaN: nothing qualifies
        strength_threshold = math.floor(overall + THRESHOLD_MARGIN)
        improvement_threshold = math.floor(overall - THRESHOLD_MARGIN)
        strengths = [ScoredCompetency(r["competency_id"], r["score"]) for r in rows if r["score"] >= strength_threshold]
        improvements = [ScoredCompetency(r["competency_id"], r["score"])
                        for r in rows if r["score"] <= improvement_threshold]
    averages = CompetencyAverages(by_category["delivery"], by_category["interpersonal"], by_category["strategic"],
                                  overall)
    return CompetencySummary(averages, strengths, improvements, due, oldest)


def summary_work(principal: Principal, bound: str) -> Work[CompetencySummary]:
    user = principal.user_id
    rows, reassessment = yield Read(
        Stmt(Q.competency_scores_of_user, (user,)),
        Stmt(Q.competency_reassessment, (user, bound)),
    )
    row = reassessment.one()
    assert row is not None  # an aggregate always answers one row
    return summarise(rows.rows, row["oldest_assessment"], bool(row["reassessment_due"]))


async def summary(db: Engine, principal: Principal) -> CompetencySummary:
    """Averages, strengths, improvements and whether a yearly re-assessment is due."""
    bound = reassessment_bound(timeutil.now())
    return await db.query(lambda: summary_work(principal, bound), principal)
