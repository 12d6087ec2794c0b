"""Skills tagged to an answer or a tool instance (exercise_skills), one rule for both.

A reader may tag master-list skills, approved custom skills and their own custom skills;
anything else is refused with 422 `unknown_skill`. Tags are replaced as a set.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterable

from app.db.queries import Q
from app.domain.errors import Invalid

MAX_TAGS = 50


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
