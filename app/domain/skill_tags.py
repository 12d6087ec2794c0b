"""Skills tagged to an answer or a tool instance (exercise_skills), one rule for both.

A reader may tag master-list skills, approved custom skills and their own custom skills;
anything else is refused with 422 `unknown_skill`. Tags are replaced as a set.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence

import msgspec

from app.db.engine import Read, Result, Stmt, changed
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


def read_with_skills(first: Stmt, user_id: str, skill_ids: list[str] | None) -> Read:
    """The first read of a work that saves something with tags: its own statement and, when
    the reader names skills, `usable_skills` after it (its result is `found[1]`)."""
    return Read(first, usable_skills(user_id, skill_ids)) if skill_ids else Read(first)


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


def tag_statements_many(owner: str, tags: dict[str, list[str]], stamp: str, *, replace: list[str],
                        chunk_bytes: int = 1_400_000) -> list[Stmt]:
    """`tag_statements` for many answers and tool entries at once (an import): the tags of the
    rows in `replace` are deleted, then every (row, skill) of `tags` is inserted, each
    statement acting only on rows that are the owner's, as `tag_statements` does. A few
    statements over `json_each` instead of two per row (D1 counts statements per batch); each
    insert is followed by a `changed` guard, so no tag meant for an owner's row is ever
    silently dropped. Parameters are cut into chunks of at most `chunk_bytes` of JSON."""
    statements = [Stmt(Q.delete_own_tags_many, (chunk, owner)) for chunk, _ in json_chunks(replace, chunk_bytes)]
    triples = [[str(uuid.uuid4()), instance_id, skill] for instance_id, skills in tags.items() for skill in skills]
    for chunk, count in json_chunks(triples, chunk_bytes):
        statements += [Stmt(Q.insert_own_tags_many, (chunk, stamp, owner)), changed("tags_not_owned", count)]
    return statements


def json_chunks(items: Sequence[object], limit: int) -> Iterator[tuple[str, int]]:
    """`items` as JSON arrays of at most `limit` bytes each (one item may exceed it alone), with
    how many items each holds: parameters for statements over `json_each(?)`."""
    parts: list[bytes] = []
    size = 2
    for item in items:
        encoded = msgspec.json.encode(item)
        if parts and size + len(encoded) + 1 > limit:
            yield (b"[" + b",".join(parts) + b"]").decode(), len(parts)
            parts, size = [], 2
        parts.append(encoded)
        size += len(encoded) + 1
    if parts:
        yield (b"[" + b",".join(parts) + b"]").decode(), len(parts)
