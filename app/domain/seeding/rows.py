"""The seed as table rows: which tables, how each is written, and every row the files describe.

Ids are stable and come from the files (docs/content.md): content rows `1.1.1.v1.3`, sources
`1.1.1.v1~burnett-evans-2016`, competency levels `analytical-thinking-3`. Citation numbers
follow the first appearance of each source in the workbook (spec §6.1).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from app.db.upsert import JsonValue, Upsert
from app.domain.seeding.shapes import SeedData

SEED_TABLES = (
    "personality_types",
    "competencies",
    "competency_levels",
    "skills",
    "tool_types",
    "references",
    "exercise_content",
    "exercise_sequence",
    "content_sources",
)
"""The tables the seed owns, in the spec's dependency order (§10)."""

# Tables whose rows point at another seed table, checked when seeding with --only:
# table -> (parent table, the column pointing at it, the parent's key).
DEPENDS_ON = {
    "competency_levels": ("competencies", "competency_id", "id"),
    "exercise_sequence": ("tool_types", "unlocks_tool", "id"),
    "content_sources": ("references", "reference_id", "id"),
}

Removal = Literal["keep", "deactivate", "delete"]

Row = dict[str, JsonValue]
Rows = dict[str, list[Row]]
"""Rows by table name."""


@dataclass(frozen=True)
class TableSpec(Upsert):
    """A seed table: how it is upserted, and what happens to its rows no longer in the files
    ("keep": they stay; "deactivate": `is_active = 0`, never deleted; "delete")."""

    removal: Removal = "keep"


SPECS: dict[str, TableSpec] = {
    spec.table: spec
    for spec in (
        TableSpec("personality_types", "code", ("code", "name", "summary")),
        TableSpec(
            "competencies", "id", ("id", "name", "definition", "category", "sort_order", "relevant_modules")
        ),
        TableSpec("competency_levels", "id", ("id", "competency_id", "level", "description", "job_context")),
        TableSpec(
            "skills",
            "id",
            ("id", "name", "category", "is_custom", "created_by", "review_status", "created_at"),
            insert_only=("created_at",),
        ),
        TableSpec(
            "tool_types",
            "id",
            (
                "id", "singular_name", "plural_name", "icon_name", "has_reminder", "reminder_frequency",
                "reminder_prompt", "unlocks_at_exercise", "version", "is_active", "created_at", "updated_at",
            ),
            insert_only=("created_at",),
            touched=("updated_at",),
            removal="deactivate",
        ),
        TableSpec(
            "references",
            "id",
            ("id", "citation_number", "author_surname", "full_citation", "short_citation", "category", "metadata", "created_at"),
            insert_only=("created_at",),
        ),
        TableSpec(
            "exercise_content",
            "id",
            (
                "id", "part_id", "module_id", "exercise_id", "version", "full_exercise_id", "content_type",
                "content_text", "display_order", "is_active", "variant_group", "created_at", "updated_at",
            ),
            insert_only=("created_at",),
            touched=("updated_at",),
            removal="deactivate",
        ),
        TableSpec(
            "exercise_sequence",
            "full_exercise_id",
            ("full_exercise_id", "part_id", "module_id", "exercise_id", "version", "sequence_order", "unlocks_tool", "is_required"),
            removal="delete",
        ),
        TableSpec(
            "content_sources", "id", ("id", "exercise_id", "reference_id", "usage_type", "notes"), removal="delete"
        ),
    )
}


def metadata_json(value: dict[str, object]) -> str:
    """A reference's free-form metadata as stored: canonical JSON (sorted keys, no spaces)."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def desired_rows(data: SeedData, now: str) -> Rows:
    """Every row the seed files describe, with stable ids derived from the files."""
    rows: Rows = {name: [] for name in SEED_TABLES}
    rows["personality_types"] = [{"code": p.code, "name": p.name, "summary": p.summary} for p in data.personality_types]
    rows["competencies"], rows["competency_levels"] = _competency_rows(data)
    rows["skills"] = [
        {"id": s.id, "name": s.name, "category": category, "is_custom": 0, "created_by": None,
         "review_status": None, "created_at": now}
        for category, s in data.skills
    ]
    first_unlock, referenced_in = _workbook_links(data)
    rows["tool_types"] = [
        {
            "id": t.id, "singular_name": t.singular_name, "plural_name": t.plural_name, "icon_name": t.icon_name,
            "has_reminder": int(t.has_reminder), "reminder_frequency": t.reminder_frequency,
            "reminder_prompt": t.reminder_prompt, "unlocks_at_exercise": first_unlock.get(t.id),
            "version": t.version, "is_active": 1, "created_at": now, "updated_at": now,
        }
        for t in data.tool_types
    ]
    rows["references"] = _reference_rows(data, referenced_in, now)
    rows["exercise_content"] = _content_rows(data, now)
    for order, exercise in enumerate(data.exercises, start=1):
        full = exercise.full_exercise_id
        rows["exercise_sequence"].append(
            {
                "full_exercise_id": full, "part_id": exercise.part_id, "module_id": exercise.module_id,
                "exercise_id": exercise.exercise_id, "version": exercise.meta.version, "sequence_order": order,
                "unlocks_tool": exercise.meta.unlocks_tool, "is_required": int(exercise.meta.required),
            }
        )
        for source in exercise.meta.sources:
            rows["content_sources"].append(
                {"id": f"{full}~{source.reference}", "exercise_id": full, "reference_id": source.reference,
                 "usage_type": source.usage, "notes": source.notes}
            )
    return rows


def _competency_rows(data: SeedData) -> tuple[list[Row], list[Row]]:
    """The competencies, and their levels."""
    competencies: list[Row] = []
    levels: list[Row] = []
    for c in data.competencies:
        competencies.append(
            {
                "id": c.id, "name": c.name, "definition": c.definition, "category": c.category,
                "sort_order": c.sort_order, "relevant_modules": json.dumps(c.relevant_modules),
            }
        )
        for level in sorted(c.levels, key=lambda x: x.level):
            levels.append(
                {
                    "id": f"{c.id}-{level.level}", "competency_id": c.id, "level": level.level,
                    "description": level.description, "job_context": level.job_context,
                }
            )
    return competencies, levels


def _workbook_links(data: SeedData) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Read in workbook order: the first exercise that unlocks each tool, and the exercises that
    cite each reference (in the order they cite it)."""
    first_unlock: dict[str, str] = {}
    referenced_in: dict[str, list[str]] = {}
    for exercise in data.exercises:
        tool = exercise.meta.unlocks_tool
        if tool and tool not in first_unlock:
            first_unlock[tool] = exercise.full_exercise_id
        for source in exercise.meta.sources:
            referenced_in.setdefault(source.reference, []).append(exercise.full_exercise_id)
    return first_unlock, referenced_in


def _reference_rows(data: SeedData, referenced_in: dict[str, list[str]], now: str) -> list[Row]:
    """The references, numbered by first appearance in the workbook (spec §6.1; uncited ones
    after, in file order), each with the exercises that cite it in its metadata."""
    citations = list(referenced_in)  # dicts keep the order of first citation
    citations += [r.id for r in data.references if r.id not in referenced_in]
    number = {reference: position for position, reference in enumerate(citations, start=1)}
    rows: list[Row] = []
    for r in data.references:
        metadata: dict[str, object] = dict(r.metadata or {})
        if r.id in referenced_in:
            metadata["referenced_in"] = referenced_in[r.id]
        rows.append(
            {
                "id": r.id, "citation_number": number[r.id], "author_surname": r.author_surname,
                "full_citation": r.full_citation, "short_citation": r.short_citation, "category": r.category,
                "metadata": metadata_json(metadata) if metadata else None, "created_at": now,
            }
        )
    return rows


def _content_rows(data: SeedData, now: str) -> list[Row]:
    """The content blocks: each module's opening, then each exercise's blocks."""

    def content_row(part: str, module: str, exercise: str, version: int, full: str, order: int,
                    content_type: str, text: str, variant: str | None) -> Row:
        return {
            "id": f"{full}.{order}", "part_id": part, "module_id": module, "exercise_id": exercise,
            "version": version, "full_exercise_id": full, "content_type": content_type, "content_text": text,
            "display_order": order, "is_active": 1, "variant_group": variant, "created_at": now, "updated_at": now,
        }

    rows = [
        content_row(opening.part_id, opening.module_id, "0", 1, opening.full_exercise_id, 1, "transition",
                    f"# {opening.title}\n\n{opening.text}", None)
        for opening in data.openings
    ]
    for exercise in data.exercises:
        for position, block in enumerate(exercise.blocks, start=1):
            # The exercise's title is the heading that opens its first block (docs/content.md).
            text = f"# {exercise.title}\n\n{block.text}" if position == 1 else block.text
            rows.append(
                content_row(exercise.part_id, exercise.module_id, exercise.exercise_id, exercise.meta.version,
                            exercise.full_exercise_id, position, block.content_type, text, block.variant_group)
            )
    return rows
