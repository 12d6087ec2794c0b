"""Skills tagged to an answer or a tool instance (exercise_skills), one rule for both.

A reader may tag master-list skills, approved custom skills and their own custom skills;
anything else is refused with 422 `unknown_skill`. Tags are replaced as a set.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterable

from app.db.engine import Result, Stmt
from app.db.queries import Q
from app.domain.errors import Invalid

MAX_TAGS = 50


def _unique(skill_ids: list[str]) -> list[str]:
    unique = list(dict.fromkeys(skill_ids))
    if len(unique) > MAX_TAGS:
        raise Invalid(f"At most {MAX_TAGS} skills can be tagged.", code="too_many_skills")
    return unique


def usable_skills(user_id: str, skill_ids: list[str]) -> Stmt:
    """The read that `checked_skills` needs: which of these skills the reader may tag."""
    return Stmt(Q.usable_skills, (json.dumps(_unique(skill_ids)), user_id))


def checked_skills(skill_ids: list[str] | None, usable: Result | None) -> list[str] | None:
    """The tags to store (unique, in the order given), or None when the request sent none.
    422 `unknown_skill` for any skill the reader may not tag (what `usable_skills` read)."""
    if skill_ids is None:
        return None
    unique = _unique(skill_ids)
    if not unique:
        return []
    allowed = set(usable.column()) if usable is not None else set()
    unknown = [s for s in unique if s not in allowed]
    if unknown:
        raise Invalid(f"Unknown skill: {', '.join(unknown[:5])}", code="unknown_skill")
    return unique


def tag_statements(owner: str, instance_id: str, skill_ids: list[str], stamp: str) -> list[Stmt]:
    """Replace the tags of an answer or tool entry: both statements act only when that row is
    the owner's, so no id, however chosen, reaches another reader's tags."""
    pairs = json.dumps([[str(uuid.uuid4()), skill] for skill in skill_ids])
    statements = [Stmt(Q.delete_own_tags, (instance_id, owner))]
    if skill_ids:
        statements.append(Stmt(Q.insert_own_tags, (instance_id, pairs, stamp, owner)))
    return statements


def check_skills(conn: sqlite3.Connection, user_id: str, skill_ids: list[str]) -> list[str]:
    unique = list(dict.fromkeys(skill_ids))
    if len(unique) > MAX_TAGS:
        raise Invalid(f"At most {MAX_TAGS} skills can be tagged.", code="too_many_skills")
    if not unique:
        return []
    usable = {r[0] for r in conn.execute(Q.usable_skills, (json.dumps(unique), user_id))}
    unknown = [s for s in unique if s not in usable]
    if unknown:
        raise Invalid(f"Unknown skill: {', '.join(unknown[:5])}", code="unknown_skill")
    return unique


def replace_tags(conn: sqlite3.Connection, instance_id: str, skill_ids: list[str], stamp: str) -> None:
    conn.execute(Q.delete_tags, (instance_id,))
    conn.executemany(Q.insert_tag, [(str(uuid.uuid4()), instance_id, s, stamp) for s in skill_ids])


def tags_of(conn: sqlite3.Connection, instance_ids: Iterable[str]) -> dict[str, list[str]]:
    ids = list(instance_ids)
    found: dict[str, list[str]] = {i: [] for i in ids}
    if ids:
        for row in conn.execute(Q.tags_of, (json.dumps(ids),)):
            found[row[0]].append(row[1])
    return found
