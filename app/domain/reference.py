"""Reference data: personality types, competencies with their levels, the credits list.

It is the same for every reader and carries no user data, so these reads need no session
(the credits page is public): each is a work run for nobody in particular (gate None). It
changes only when an editor re-seeds, possibly from another process on the live database,
so nothing is cached in this process: a cache would have to notice a seed run by someone
else, and each list is one read batch of one or two queries anyway: with the full sample
seed, 0.1 ms for the personality types, 0.2 ms for the competencies with their 75 levels,
0.4 ms for the 36 references with their usage.
"""

from __future__ import annotations

import json
from typing import Literal

import msgspec

from app.db.engine import Engine, Read, Stmt, Work
from app.db.queries import Q
from app.domain.competencies import Category
from app.domain.json_limits import FreeJSON

# How a source is used (the seed's USAGE_TYPES, app/domain/seeding/shapes.py): the first four are
# credited next to exercises, "inspiration" only on the credits page.
UsageType = Literal["direct_quote", "framework", "concept", "adaptation", "inspiration"]


class PersonalityType(msgspec.Struct, frozen=True):
    code: str
    name: str
    summary: str


class CompetencyLevel(msgspec.Struct, frozen=True):
    level: int
    description: str
    job_context: str | None


class Competency(msgspec.Struct, frozen=True):
    id: str
    name: str
    definition: str
    category: Category
    sort_order: int
    levels: list[CompetencyLevel]


class ReferenceUsage(msgspec.Struct, frozen=True):
    """An exercise that uses a reference, and how."""

    exercise_id: str
    usage_type: UsageType


class Reference(msgspec.Struct, frozen=True):
    """One entry of the credits; `metadata` is the editor's free-form object (or null)."""

    id: str
    citation_number: int
    author_surname: str
    full_citation: str
    short_citation: str
    category: str | None
    metadata: dict[str, FreeJSON] | None
    used_in: list[ReferenceUsage]


def personality_types_work() -> Work[list[PersonalityType]]:
    (rows,) = yield Read(Stmt(Q.list_personality_types))
    return [PersonalityType(r["code"], r["name"], r["summary"]) for r in rows.rows]


async def personality_types(db: Engine) -> list[PersonalityType]:
    """The 16 types, by code."""
    return await db.query(personality_types_work, None)


def competencies_work() -> Work[list[Competency]]:
    competencies, all_levels = yield Read(Stmt(Q.list_competencies), Stmt(Q.list_competency_levels))
    levels: dict[str, list[CompetencyLevel]] = {}
    for r in all_levels.rows:
        levels.setdefault(r["competency_id"], []).append(CompetencyLevel(r["level"], r["description"], r["job_context"]))
    return [Competency(r["id"], r["name"], r["definition"], r["category"], r["sort_order"], levels.get(r["id"], []))
            for r in competencies.rows]


async def competencies(db: Engine) -> list[Competency]:
    """Every competency with its five levels: two queries in one read batch, never one per competency."""
    return await db.query(competencies_work, None)


def parse_metadata(text: str | None) -> dict[str, FreeJSON] | None:
    """The metadata column as an object; anything else (absent, not JSON, not an object) is null,
    so one odd row never breaks the credits page."""
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def references_work() -> Work[list[Reference]]:
    references, usage = yield Read(Stmt(Q.list_references), Stmt(Q.list_reference_usage))
    used_in: dict[str, list[ReferenceUsage]] = {}
    for r in usage.rows:
        used_in.setdefault(r["reference_id"], []).append(ReferenceUsage(r["exercise_id"], r["usage_type"]))
    return [
        Reference(r["id"], r["citation_number"], r["author_surname"], r["full_citation"], r["short_citation"],
                  r["category"], parse_metadata(r["metadata"]), used_in.get(r["id"], []))
        for r in references.rows
    ]


async def references(db: Engine) -> list[Reference]:
    """The credits: by author surname then citation number, each with the exercises that use it
    (`used_in`, in workbook order). "Inspiration" sources are shown nowhere else."""
    return await db.query(references_work, None)


__all__ = [
    "Competency",
    "CompetencyLevel",
    "PersonalityType",
    "Reference",
    "ReferenceUsage",
    "UsageType",
    "competencies",
    "parse_metadata",
    "personality_types",
    "references",
]
