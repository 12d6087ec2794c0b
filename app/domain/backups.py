"""Backups, verified restores and whole-database dumps: the operator's rules around them.

They work on the SQLite file (app/db/snapshots.py does the work), so on the d1 engine they
refuse: D1 keeps its own history (Time Travel: any minute of the last 30 days, 7 on the
free plan) and `wrangler d1 export` writes the same dump format. The rules here:

- a backup never overwrites a file;
- a restore happens only after the snapshot passes every check of `dreamtree check`
  (integrity, foreign keys, no pending migrations, no schema drift); otherwise nothing changes;
- a dump is imported only into an empty database file.
"""

from __future__ import annotations

from pathlib import Path

from app.db import snapshots
from app.db.checks import Verdict
from app.domain.errors import Invalid


class RestoreRefused(Invalid):
    """The snapshot or dump did not pass the checks; nothing was changed."""

    code = "restore_refused"


def refusal_on_d1(command: str) -> str:
    """The one-line answer of a file command asked on the d1 engine."""
    load = "; `wrangler d1 execute <db> --remote --file <file>` loads a dump" if command == "import-d1" else ""
    return (f"`dreamtree {command}` works on the SQLite file only; on D1 use Time Travel "
            "(`wrangler d1 time-travel restore <db> --timestamp <when>`) to go back and "
            f"`wrangler d1 export <db> --remote --output <file>` for a copy{load}")


def backup(db: Path, target: Path) -> int:
    """A consistent online snapshot of `db` at `target` (a new file); returns its size."""
    return snapshots.backup(db, target)


def _accept(found: Verdict) -> None:
    if found.ok:
        return
    problems = []
    if found.integrity != ["ok"]:
        problems.append(f"integrity check failed ({found.integrity[0]})")
    if found.orphans:
        problems.append(f"{found.orphans} rows point at missing parents")
    if found.pending:
        problems.append(f"migrations pending: {', '.join(found.pending)}")
    if found.drift:
        problems.append(f"schema differs from schema.sql ({found.drift[0]}…)")
    raise RestoreRefused("; ".join(problems))


def restore(source: Path, db: Path) -> Verdict:
    """Replace `db` with the snapshot `source` once the snapshot passes every check."""
    return snapshots.restore(source, db, _accept)


def export_d1(db: Path, target: Path) -> int:
    """The whole database as a D1 SQL dump at `target`; returns the number of statements."""
    return snapshots.export_d1(db, target)


def import_d1(source: Path, db: Path) -> int:
    """Load a D1 SQL dump into an empty database file; returns the number of statements."""
    try:
        return snapshots.import_d1(source, db)
    except snapshots.DumpRefused as refused:
        raise RestoreRefused(str(refused)) from None
