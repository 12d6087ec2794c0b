"""Reference data: personality types, competencies with their levels, the credits list.

It is the same for every reader and carries no user data, so these reads need no session
(the credits page is public). It changes only when an editor re-seeds, possibly from another
process on the live database, so nothing is cached in this process: a cache would have to
notice a seed run by someone else, and each list is one read job of one or two queries
anyway: with the full sample seed, 0.1 ms for the personality types, 0.2 ms for the
competencies with their 75 levels, 0.4 ms for the 36 references with their usage.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from app.db.connection import Database
from app.db.queries import Q


async def personality_types(db: Database) -> list[dict[str, Any]]:
    """The 16 types, by code."""
    rows = await db.read(lambda c: c.execute(Q.list_personality_types).fetchall())
    return [{"code": r["code"], "name": r["name"], "summary": r["summary"]} for r in rows]


async def competencies(db: Database) -> list[dict[str, Any]]:
    """Every competency with its five levels: two queries in one read job, never one per competency."""

    def read(conn: sqlite3.Connection) -> list[dict[str, Any]]:
        levels: dict[str, list[dict[str, Any]]] = {}
        for r in conn.execute(Q.list_competency_levels):
            levels.setdefault(r["competency_id"], []).append(
                {"level": r["level"], "description": r["description"], "job_context": r["job_context"]})
        return [
            {"id": r["id"], "name": r["name"], "definition": r["definition"], "category": r["category"],
             "sort_order": r["sort_order"], "levels": levels.get(r["id"], [])}
            for r in conn.execute(Q.list_competencies)
        ]

    return await db.read(read)


def parse_metadata(text: str | None) -> dict[str, Any] | None:
    """The metadata column as an object; anything else (absent, not JSON, not an object) is null,
    so one odd row never breaks the credits page."""
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


async def references(db: Database) -> list[dict[str, Any]]:
    """The credits: by author surname then citation number, each with the exercises that use it
    (`used_in`, in workbook order). "Inspiration" sources are shown nowhere else."""

    def read(conn: sqlite3.Connection) -> list[dict[str, Any]]:
        used_in: dict[str, list[dict[str, str]]] = {}
        for r in conn.execute(Q.list_reference_usage):
            used_in.setdefault(r["reference_id"], []).append(
                {"exercise_id": r["exercise_id"], "usage_type": r["usage_type"]})
        return [
            {"id": r["id"], "citation_number": r["citation_number"], "author_surname": r["author_surname"],
             "full_citation": r["full_citation"], "short_citation": r["short_citation"], "category": r["category"],
             "metadata": parse_metadata(r["metadata"]), "used_in": used_in.get(r["id"], [])}
            for r in conn.execute(Q.list_references)
        ]

    return await db.read(read)


__all__ = ["competencies", "parse_metadata", "personality_types", "references"]
