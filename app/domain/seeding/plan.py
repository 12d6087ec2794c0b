"""The plan: what a seed would change, table by table, and the statements that change it.

`plan` compares the rows a database holds with the rows the files describe, in Python:
per table how many rows would be inserted, updated, left as they are, deactivated, deleted or
kept. `write_statements` is the seed as SQL, in dependency order: bulk upserts that touch a
row only when something in it differs (so `updated_at` moves only then), and the statements
that renumber, deactivate and delete. The statements do not depend on what was read: they
write the files' content whatever the database holds, and run again they change nothing.

Given a plan, every statement is followed by `changed("content_changed", n)`, n being the
number of rows the plan says it changes. Those counts are a fingerprint of what the plan read:
if the content moved between the read and the write (another seed, a hand edit), a count
differs, the whole batch is dropped and the work runs again on fresh reads. So a plan is
never applied to rows it did not see, and the report always describes what was written.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from app.db.engine import Stmt, changed
from app.db.queries import Q
from app.db.upsert import JsonValue
from app.domain.seeding.rows import SEED_TABLES, SPECS, Row, Rows, TableSpec

STALE = "content_changed"
"""The guard that stops a write whose plan no longer matches the database."""


@dataclass(frozen=True)
class TablePlan:
    insert: int = 0
    update: int = 0
    unchanged: int = 0
    deactivate: int = 0
    delete: int = 0
    kept: int = 0  # rows no longer in the files that stay (user data may point at them)
    # What the statements will change besides the counts above (for the guards only):
    written: frozenset[str] = field(default=frozenset(), repr=False)  # keys inserted or updated
    parked: int = field(default=0, repr=False)  # rows moved out of the way of a UNIQUE renumbering
    renumbered: int = field(default=0, repr=False)  # parked references numbered after the rest

    @property
    def changes(self) -> int:
        return self.insert + self.update + self.deactivate + self.delete


@dataclass(frozen=True)
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


def _keys(rows: Sequence[Row], key: str) -> list[JsonValue]:
    return [row[key] for row in rows]


def _pairs(rows: Sequence[Row], key: str, number: str) -> set[tuple[JsonValue, JsonValue]]:
    return {(row[key], row[number]) for row in rows}


def _number(row: Row, column: str) -> int:
    value = row[column]
    return value if isinstance(value, int) else 0


def _table_plan(name: str, existing: Sequence[Row], wanted: Sequence[Row], current_exercises: Collection[JsonValue]) -> TablePlan:
    spec = SPECS[name]
    have = {row[spec.key]: row for row in existing}
    insert, update, unchanged, written = _written(spec, have, wanted)
    deactivate, delete, kept = _removed(name, spec, have, {row[spec.key] for row in wanted}, current_exercises)
    parked, renumbered = _moved(name, spec, have, wanted)
    return TablePlan(insert, update, unchanged, deactivate, delete, kept, written, parked, renumbered)


def _written(spec: TableSpec, have: Mapping[JsonValue, Row], wanted: Sequence[Row]) -> tuple[int, int, int, frozenset[str]]:
    """The files' rows: (inserted, updated, unchanged, the keys written)."""
    insert = update = unchanged = 0
    written: set[str] = set()
    for row in wanted:
        key = row[spec.key]
        old = have.get(key)
        if old is None:
            insert += 1
        elif any(old[c] != row[c] for c in spec.compared):
            update += 1
        else:
            unchanged += 1
            continue
        written.add(str(key))
    return insert, update, unchanged, frozenset(written)


def _removed(name: str, spec: TableSpec, have: Mapping[JsonValue, Row], wanted_keys: Collection[JsonValue],
             current_exercises: Collection[JsonValue]) -> tuple[int, int, int]:
    """The database's rows no longer in the files: (deactivated, deleted, kept)."""
    deactivate = delete = kept = 0
    for key, old in have.items():
        if key in wanted_keys:
            continue
        if spec.removal == "deactivate":
            # mirrors deactivate_*: only active rows change
            if old["is_active"] == 1:
                deactivate += 1
            else:
                kept += 1
        elif spec.removal == "delete" and (name == "exercise_sequence" or old["exercise_id"] in current_exercises):
            delete += 1
        else:
            kept += 1
    return deactivate, delete, kept


def _moved(name: str, spec: TableSpec, have: Mapping[JsonValue, Row], wanted: Sequence[Row]) -> tuple[int, int]:
    """Rows a UNIQUE renumbering moves out of the way first: (parked, renumbered after the rest)."""
    if name not in ("references", "exercise_sequence"):
        return 0, 0
    # mirrors park_references / park_sequence / number_kept_references (app/sql/seeding.sql)
    wanted_keys = {row[spec.key] for row in wanted}
    parked = renumbered = 0
    column = "citation_number" if name == "references" else "sequence_order"
    pairs = _pairs(wanted, spec.key, column)
    for key, old in have.items():
        number = _number(old, column)
        moves = number > 0 and (key, old[column]) not in pairs
        if name == "references":
            moves = moves and (number <= len(wanted) or key in wanted_keys)
        parked += moves
        if name == "references" and key not in wanted_keys and (moves or number < 0):
            renumbered += 1
    return parked, renumbered


def plan(existing: Mapping[str, Sequence[Row]], wanted: Rows, tables: Sequence[str] = SEED_TABLES) -> Plan:
    """What writing `wanted` over `existing` changes, per table (in `tables`' order)."""
    current = {row["full_exercise_id"] for row in wanted["exercise_sequence"]}
    return Plan({name: _table_plan(name, existing[name], wanted[name], current) for name in tables})


def write_statements(wanted: Rows, tables: Collection[str], now: str, guarded_by: Plan | None = None) -> list[Stmt]:
    """The seed as SQL for `tables`, in dependency order.

    With `guarded_by`, each statement is followed by a guard on the rows it changes, as that
    plan counted them; without, the statements stand alone (`--emit-sql`)."""
    out: list[Stmt] = []

    def add(statement: Stmt, count: int) -> None:
        out.append(statement)
        if guarded_by is not None:
            out.append(changed(STALE, count))

    current = json.dumps(_keys(wanted["exercise_sequence"], "full_exercise_id"))
    for name in SEED_TABLES:
        if name not in tables:
            continue
        spec = SPECS[name]
        rows = wanted[name]
        ids = json.dumps(_keys(rows, spec.key), ensure_ascii=False)
        expect = guarded_by.tables[name] if guarded_by is not None else TablePlan()
        if name == "references":
            pairs = json.dumps([[row["id"], row["citation_number"]] for row in rows])
            add(Stmt(Q.park_references, (pairs, len(rows))), expect.parked)
        if name == "exercise_sequence":
            pairs = json.dumps([[row["full_exercise_id"], row["sequence_order"]] for row in rows])
            add(Stmt(Q.park_sequence, (pairs,)), expect.parked)
        for chunk in spec.chunks(rows):
            add(spec.statement(chunk), sum(str(row[spec.key]) in expect.written for row in chunk))
        if name == "references":
            add(Stmt(Q.number_kept_references), expect.renumbered)
        if spec.removal == "deactivate":
            add(Stmt(Q[f"deactivate_{name}"], (now, ids)), expect.deactivate)
        if name == "exercise_sequence":
            add(Stmt(Q.delete_stale_sequence, (ids,)), expect.delete)
        if name == "content_sources":
            add(Stmt(Q.delete_stale_sources, (current, ids)), expect.delete)
    return out
