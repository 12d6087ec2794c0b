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
Each request is one database job.
"""

from __future__ import annotations

import math
import sqlite3
import uuid
from collections.abc import Sequence
from datetime import date, datetime, time, timezone
from typing import Any

from app import timeutil
from app.db.connection import Database
from app.db.queries import Q
from app.domain.errors import Invalid
from app.domain.sessions import Principal

CATEGORIES = ("delivery", "interpersonal", "strategic")
MIN_SCORE, MAX_SCORE = 1, 5
# Fifteen competencies today; room for an editor to add some without an API change.
MAX_SCORES_PER_REQUEST = 50
# spec §3.3: the margin around the overall average before flooring.
THRESHOLD_MARGIN = 0.3


def score_out(row: sqlite3.Row) -> dict[str, Any]:
    return {"competency_id": row["competency_id"], "score": row["score"], "assessed_at": row["assessed_at"]}


def read_scores(conn: sqlite3.Connection, user_id: str) -> list[sqlite3.Row]:
    return conn.execute(Q.competency_scores_of_user, (user_id,)).fetchall()


async def scores(db: Database, principal: Principal) -> list[dict[str, Any]]:
    """The reader's scores, by category and the competencies' sort order."""
    rows = await db.read(lambda conn: read_scores(conn, principal.user_id))
    return [score_out(r) for r in rows]


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


async def save_scores(db: Database, principal: Principal, entries: Sequence[tuple[str, int]]) -> list[dict[str, Any]]:
    """Upsert the given (competency_id, score) pairs, all stamped now; return all the reader's scores."""
    check_entries(entries)
    stamp = timeutil.now_iso()

    def write(conn: sqlite3.Connection) -> list[sqlite3.Row]:
        known = {r[0] for r in conn.execute(Q.known_competencies)}
        unknown = [competency_id for competency_id, _ in entries if competency_id not in known]
        if unknown:
            raise Invalid(f"No competency {unknown[0]!r}.", code="unknown_competency")
        conn.executemany(Q.upsert_score, [(str(uuid.uuid4()), principal.user_id, competency_id, score, stamp)
                                          for competency_id, score in entries])
        return read_scores(conn, principal.user_id)

    rows = await db.write(write)
    return [score_out(r) for r in rows]


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


def summarise(rows: Sequence[sqlite3.Row], oldest: str | None, due: bool) -> dict[str, Any]:
    """spec §3.3 over the reader's scores (each row: competency_id, score, category)."""
    averages: dict[str, float | None] = {
        category: average([r["score"] for r in rows if r["category"] == category]) for category in CATEGORIES
    }
    overall = average([r["score"] for r in rows])
    averages["overall"] = overall
    strengths: list[dict[str, Any]] = []
    improvements: list[dict[str, Any]] = []
    if overall is not None:  # with no scores the spec's thresholds are NaN: nothing qualifies
        strength_threshold = math.floor(overall + THRESHOLD_MARGIN)
        improvement_threshold = math.floor(overall - THRESHOLD_MARGIN)
        strengths = [{"competency_id": r["competency_id"], "score": r["score"]}
                     for r in rows if r["score"] >= strength_threshold]
        improvements = [{"competency_id": r["competency_id"], "score": r["score"]}
                        for r in rows if r["score"] <= improvement_threshold]
    return {"averages": averages, "strengths": strengths, "improvements": improvements,
            "reassessment_due": due, "oldest_assessment": oldest}


async def summary(db: Database, principal: Principal) -> dict[str, Any]:
    """Averages, strengths, improvements and whether a yearly re-assessment is due."""
    bound = reassessment_bound(timeutil.now())

    def read(conn: sqlite3.Connection) -> dict[str, Any]:
        rows = read_scores(conn, principal.user_id)
        reassessment = conn.execute(Q.competency_reassessment, (principal.user_id, bound)).fetchone()
        return summarise(rows, reassessment["oldest_assessment"], bool(reassessment["reassessment_due"]))

    return await db.read(read)
