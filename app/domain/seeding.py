"""Seeding: reference data and workbook content from seed/ into the database, safely re-runnable.

The seed is one list of SQL statements, in the spec's dependency order (§10): upserts that
only touch a row when something in it changed (so `updated_at` moves only then), plus the
statements that deactivate content no longer in the files. The same list is executed here in
one transaction, or written out as a file for `wrangler d1 execute --file` (no BEGIN/COMMIT,
every statement well under D1's limits, re-runnable). A plan computed against the database
(insert / update / unchanged / deactivate / delete / kept per table) decides whether there is
anything to do at all and is what `--dry-run` prints.

Versioning (spec §14.2): a new `version` of an exercise gives new content rows; the old ones
are set `is_active = 0`, never deleted, and the exercise's place in `exercise_sequence` now
names the new version. Answers keep pointing at the version they answered; progression
matches answers to sequence places by (part, module, exercise), so nobody loses their place.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.db.connection import run_in_transaction
from app.db.sqltext import sql_literal
from app.domain.seed_files import SEED_DIR, SeedData, metadata_json, read_seed
from app.timeutil import now_iso

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

# Tables whose rows point at another seed table, checked when seeding with --only.
DEPENDS_ON = {
    "competency_levels": ("competencies", "competency_id", "id"),
    "exercise_sequence": ("tool_types", "unlocks_tool", "id"),
    "content_sources": ("references", "reference_id", "id"),
}


@dataclass(frozen=True)
class TableSpec:
    name: str
    key: str
    columns: tuple[str, ...]
    insert_only: tuple[str, ...] = ()  # set on insert, never updated (created_at)
    touched: tuple[str, ...] = ()  # moved on every real change (updated_at)
    scope: str = ""  # which existing rows the seed owns
    removal: str = "keep"  # what happens to owned rows no longer in the files

    @property
    def compared(self) -> tuple[str, ...]:
        return tuple(c for c in self.columns if c not in self.insert_only and c not in self.touched)


SPECS = {
    spec.name: spec
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
            scope="is_custom = 0",
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


def _q(name: str) -> str:
    return f'"{name}"' if name == "references" else name


# --- desired rows -------------------------------------------------------------------------------


def desired_rows(data: SeedData, now: str) -> dict[str, list[dict[str, Any]]]:
    """Every row the seed files describe, with stable ids derived from the files."""
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in SEED_TABLES}
    rows["personality_types"] = [{"code": p.code, "name": p.name, "summary": p.summary} for p in data.personality_types]
    for c in data.competencies:
        rows["competencies"].append(
            {
                "id": c.id, "name": c.name, "definition": c.definition, "category": c.category,
                "sort_order": c.sort_order, "relevant_modules": json.dumps(c.relevant_modules),
            }
        )
        for level in sorted(c.levels, key=lambda x: x.level):
            rows["competency_levels"].append(
                {
                    "id": f"{c.id}-{level.level}", "competency_id": c.id, "level": level.level,
                    "description": level.description, "job_context": level.job_context,
                }
            )
    rows["skills"] = [
        {"id": s.id, "name": s.name, "category": category, "is_custom": 0, "created_by": None,
         "review_status": None, "created_at": now}
        for category, s in data.skills
    ]

    first_unlock: dict[str, str] = {}
    citations: list[str] = []
    referenced_in: dict[str, list[str]] = {}
    for exercise in data.exercises:
        tool = exercise.meta.unlocks_tool
        if tool and tool not in first_unlock:
            first_unlock[tool] = exercise.full_exercise_id
        for source in exercise.meta.sources:
            if source.reference not in citations:
                citations.append(source.reference)
            referenced_in.setdefault(source.reference, []).append(exercise.full_exercise_id)
    # Citation numbers by first appearance in the workbook (spec §6.1); uncited ones after, in file order.
    citations += [r.id for r in data.references if r.id not in citations]

    rows["tool_types"] = [
        {
            "id": t.id, "singular_name": t.singular_name, "plural_name": t.plural_name, "icon_name": t.icon_name,
            "has_reminder": int(t.has_reminder), "reminder_frequency": t.reminder_frequency,
            "reminder_prompt": t.reminder_prompt, "unlocks_at_exercise": first_unlock.get(t.id),
            "version": t.version, "is_active": 1, "created_at": now, "updated_at": now,
        }
        for t in data.tool_types
    ]
    for r in data.references:
        metadata = dict(r.metadata or {})
        if r.id in referenced_in:
            metadata["referenced_in"] = referenced_in[r.id]
        rows["references"].append(
            {
                "id": r.id, "citation_number": citations.index(r.id) + 1, "author_surname": r.author_surname,
                "full_citation": r.full_citation, "short_citation": r.short_citation, "category": r.category,
                "metadata": metadata_json(metadata) if metadata else None, "created_at": now,
            }
        )

    def content_row(part: str, module: str, exercise: str, version: int, full: str, order: int,
                    content_type: str, text: str, variant: str | None) -> dict[str, Any]:
        return {
            "id": f"{full}.{order}", "part_id": part, "module_id": module, "exercise_id": exercise,
            "version": version, "full_exercise_id": full, "content_type": content_type, "content_text": text,
            "display_order": order, "is_active": 1, "variant_group": variant, "created_at": now, "updated_at": now,
        }

    for opening in data.openings:
        rows["exercise_content"].append(
            content_row(opening.part_id, opening.module_id, "0", 1, opening.full_exercise_id, 1, "transition",
                        f"# {opening.title}\n\n{opening.text}", None)
        )
    for order, exercise in enumerate(data.exercises, start=1):
        full = exercise.full_exercise_id
        for position, block in enumerate(exercise.blocks, start=1):
            # The exercise's title is the heading that opens its first block (docs/content.md).
            text = f"# {exercise.title}\n\n{block.text}" if position == 1 else block.text
            rows["exercise_content"].append(
                content_row(exercise.part_id, exercise.module_id, exercise.exercise_id, exercise.meta.version,
                            full, position, block.content_type, text, block.variant_group)
            )
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


# --- statements ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Statement:
    table: str
    sql: str
    params: tuple[Any, ...] = ()


def _upsert(spec: TableSpec, row: dict[str, Any]) -> Statement:
    columns = spec.columns
    updates = [c for c in columns if c != spec.key and c not in spec.insert_only]
    changed = " OR ".join(f"{_q(spec.name)}.{c} IS NOT excluded.{c}" for c in spec.compared if c != spec.key)
    sql = (
        f"INSERT INTO {_q(spec.name)} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
        f"ON CONFLICT ({spec.key}) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in updates)} "
        f"WHERE {changed}"
    )
    return Statement(spec.name, sql, tuple(row[c] for c in columns))


def statements(data: SeedData, now: str) -> list[Statement]:
    """The whole seed as SQL, in dependency order; idempotent and safe on a live database."""
    rows = desired_rows(data, now)
    ids = {name: json.dumps([r[SPECS[name].key] for r in rows[name]]) for name in SEED_TABLES}
    out: list[Statement] = []
    for name in SEED_TABLES:
        spec = SPECS[name]
        if name == "references":
            # citation_number is UNIQUE: park every number out of the way, then set the new ones.
            out.append(Statement(name, 'UPDATE "references" SET citation_number = -citation_number WHERE citation_number > 0'))
        if name == "exercise_sequence":
            # sequence_order is UNIQUE: the same two-step move.
            out.append(Statement(name, "UPDATE exercise_sequence SET sequence_order = -sequence_order WHERE sequence_order > 0"))
        out.extend(_upsert(spec, row) for row in rows[name])
        if name == "references":
            # References dropped from the files keep their rows (old content may cite them), numbered after the rest.
            out.append(Statement(name, 'UPDATE "references" SET citation_number = ? - citation_number WHERE citation_number < 0',
                                 (len(rows[name]),)))
        if spec.removal == "deactivate":
            out.append(Statement(name, f"UPDATE {name} SET is_active = 0, updated_at = ? WHERE is_active = 1 "
                                       f"AND {spec.key} NOT IN (SELECT value FROM json_each(?))", (now, ids[name])))
        if name == "exercise_sequence":
            # Places no longer in the files, and places now held by a newer version of their exercise.
            out.append(Statement(name, "DELETE FROM exercise_sequence WHERE sequence_order < 0"))
        if name == "content_sources":
            current = json.dumps([r["full_exercise_id"] for r in rows["exercise_sequence"]])
            out.append(Statement(name, "DELETE FROM content_sources WHERE exercise_id IN (SELECT value FROM json_each(?)) "
                                       "AND id NOT IN (SELECT value FROM json_each(?))", (current, ids[name])))
    return out


# --- the plan -----------------------------------------------------------------------------------


@dataclass
class TablePlan:
    insert: int = 0
    update: int = 0
    unchanged: int = 0
    deactivate: int = 0
    delete: int = 0
    kept: int = 0  # rows no longer in the files that stay (user data may point at them)

    @property
    def changes(self) -> int:
        return self.insert + self.update + self.deactivate + self.delete


@dataclass
class Plan:
    tables: dict[str, TablePlan] = field(default_factory=dict)

    @property
    def changes(self) -> int:
        return sum(t.changes for t in self.tables.values())

    def lines(self) -> list[str]:
        out = [f"{'table':<20} {'insert':>7} {'update':>7} {'same':>7} {'deactivate':>10} {'delete':>7} {'kept':>5}"]
        for name, t in self.tables.items():
            out.append(f"{name:<20} {t.insert:>7} {t.update:>7} {t.unchanged:>7} {t.deactivate:>10} {t.delete:>7} {t.kept:>5}")
        return out


def plan(conn: sqlite3.Connection, data: SeedData, tables: Sequence[str] = SEED_TABLES) -> Plan:
    rows = desired_rows(data, now_iso())
    result = Plan()
    current_fulls = {r["full_exercise_id"] for r in rows["exercise_sequence"]}
    for name in tables:
        spec = SPECS[name]
        where = f" WHERE {spec.scope}" if spec.scope else ""
        existing = {r[spec.key]: dict(r) for r in conn.execute(f"SELECT * FROM {_q(name)}{where}")}
        wanted = {r[spec.key]: r for r in rows[name]}
        t = TablePlan()
        for key, row in wanted.items():
            have = existing.get(key)
            if have is None:
                t.insert += 1
            elif any(have[c] != row[c] for c in spec.compared):
                t.update += 1
            else:
                t.unchanged += 1
        for key, have in existing.items():
            if key in wanted:
                continue
            if spec.removal == "deactivate":
                t.deactivate += 1 if have["is_active"] else 0
                t.kept += 0 if have["is_active"] else 1
            elif spec.removal == "delete" and (name == "exercise_sequence" or have["exercise_id"] in current_fulls):
                t.delete += 1
            else:
                t.kept += 1
        result.tables[name] = t
    return result


# --- running it ---------------------------------------------------------------------------------


class SeedDependencyMissing(Exception):
    pass


def _check_dependencies(conn: sqlite3.Connection, only: str, data: SeedData) -> None:
    if only not in DEPENDS_ON:
        return
    parent, column, parent_key = DEPENDS_ON[only]
    needed = {r[column] for r in desired_rows(data, "")[only] if r[column] is not None}
    present = {r[0] for r in conn.execute(f"SELECT {parent_key} FROM {_q(parent)}")}
    missing = sorted(needed - present)
    if missing:
        raise SeedDependencyMissing(
            f"{only} needs {parent} that are not in the database ({', '.join(missing[:5])}"
            f"{'…' if len(missing) > 5 else ''}); seed {parent} first"
        )


@dataclass(frozen=True)
class SeedResult:
    plan: Plan
    written: bool


def seed(
    conn: sqlite3.Connection,
    *,
    directory: Path = SEED_DIR,
    dry_run: bool = False,
    only: str | None = None,
) -> SeedResult:
    """Validate the files, plan, and (unless dry_run or nothing changed) write in one transaction."""
    data = read_seed(directory)
    tables = (only,) if only else SEED_TABLES
    if only:
        _check_dependencies(conn, only, data)
    the_plan = plan(conn, data, tables)
    if dry_run or the_plan.changes == 0:
        return SeedResult(the_plan, False)
    todo = [s for s in statements(data, now_iso()) if s.table in tables]

    def write(c: sqlite3.Connection) -> None:
        for statement in todo:
            c.execute(statement.sql, statement.params)

    run_in_transaction(conn, write, True)
    return SeedResult(the_plan, True)


def is_unseeded(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT NOT EXISTS (SELECT 1 FROM exercise_sequence) AND NOT EXISTS (SELECT 1 FROM tool_types)").fetchone()[0] == 1


# --- SQL for D1 ---------------------------------------------------------------------------------


def render(statement: Statement) -> str:
    parts = statement.sql.split("?")
    if len(parts) - 1 != len(statement.params):
        raise ValueError(f"placeholder count does not match for {statement.table}")
    out = [parts[0]]
    for value, rest in zip(statement.params, parts[1:]):
        out.append(sql_literal(value))
        out.append(rest)
    return "".join(out) + ";"


def emit_sql(directory: Path = SEED_DIR, *, only: str | None = None) -> str:
    """The seed as a file for `wrangler d1 execute --file`: no BEGIN/COMMIT, re-runnable."""
    data = read_seed(directory)
    stamp = now_iso()
    lines = [
        "-- DreamTree seed, generated by `dreamtree seed --emit-sql` at " + stamp,
        "-- Apply with: wrangler d1 execute <db> --file <this file>  (re-runnable: upserts only)",
    ]
    lines += [render(s) for s in statements(data, stamp) if only is None or s.table == only]
    return "\n".join(lines) + "\n"
