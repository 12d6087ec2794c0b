"""Tools: the catalogue with each reader's unlocks, and the reader's own tool instances.

Rules (DESIGN.md "Tools", API.md "Tools", docs/tools.md):
- a tool unlocks when the reader has answered an exercise whose `unlocks_tool` names it
  (spec §12, matched by place like the workbook); only creating an instance needs the unlock
  (403 `tool_locked`): instances that exist, imported ones included, can always be listed,
  read, edited and deleted;
- content fits the tool's shape (app/domain/tool_shapes.py) and is stored in its normalised
  form, sealed under the reader's data key; `content_hash` (keyed, per account) is recomputed
  on every write and shown to the owner;
- `origin` is "standalone" or the id of an exercise this reader has answered (its answered
  version or the place's current one), 422 `invalid_origin` otherwise; it is set at creation;
- skills are tagged through exercise_skills with the answers' rule (app/domain/skill_tags.py);
- at most MAX_INSTANCES_PER_TOOL instances per reader and tool (409 `tool_instance_limit`);
- someone else's instance, an unknown one and an unknown tool are all 404.
Each request is one database job. Validation, hashing and sealing happen before the write
transaction when the tool type is known from the path; an edit learns it inside the job.
"""

from __future__ import annotations

import re
import sqlite3
import uuid
from typing import Any, Final

from app.db.connection import Database
from app.db.queries import Q
from app.domain import keys
from app.domain.errors import Conflict, Forbidden, Invalid, NotFound
from app.domain.sessions import Principal
from app.domain.skill_tags import check_skills, replace_tags, tags_of
from app.domain.tool_shapes import content_schema, has_shape, validate_content, with_kept
from app.timeutil import now_iso

MAX_INSTANCES_PER_TOOL: Final = 1000
STANDALONE: Final = "standalone"
TABLE: Final = "tool_instances"

_EXERCISE_ID = re.compile(r"([0-9A-Za-z_-]{1,20})\.([0-9A-Za-z_-]{1,20})\.([0-9A-Za-z_-]{1,20})\.v([0-9]{1,9})")


def _no_tool(tool_type: str) -> NotFound:
    return NotFound(f"No tool {tool_type}.", code="tool_not_found")


def _no_instance(instance_id: str) -> NotFound:
    return NotFound(f"No tool entry {instance_id}.", code="tool_instance_not_found")


# --- the catalogue ---------------------------------------------------------------------------


async def list_tools(db: Database, principal: Principal) -> list[dict[str, Any]]:
    """Every active tool this service has a shape for, with this reader's unlock and count."""
    rows = await db.read(lambda conn: conn.execute(Q.tool_catalogue, (principal.user_id,)).fetchall())
    return [
        {
            "id": r["id"], "singular_name": r["singular_name"], "plural_name": r["plural_name"],
            "icon_name": r["icon_name"], "has_reminder": bool(r["has_reminder"]),
            "reminder_frequency": r["reminder_frequency"], "unlocked": bool(r["unlocked"]),
            "instance_count": r["instance_count"], "content_schema": content_schema(r["id"]),
        }
        for r in rows
        if has_shape(r["id"])
    ]


# --- instances -------------------------------------------------------------------------------


def _instance_out(conn: sqlite3.Connection, principal: Principal, rows: list[sqlite3.Row]) -> list[dict[str, Any]]:
    tags = tags_of(conn, [r["id"] for r in rows])
    return [
        {
            "id": r["id"], "tool_type": r["tool_type"], "origin": r["origin"],
            "content": keys.open_column(principal.dek, r["content_json"], table=TABLE, row_id=r["id"]),
            "skills": tags[r["id"]], "content_hash": r["content_hash"],
            "created_at": r["created_at"], "updated_at": r["updated_at"],
        }
        for r in rows
    ]


def _check_origin(conn: sqlite3.Connection, user_id: str, origin: str) -> None:
    if origin == STANDALONE:
        return
    place = _EXERCISE_ID.fullmatch(origin)
    if place is None or not conn.execute(Q.tool_origin_answered, (user_id, *place.groups()[:3], origin)).fetchone()[0]:
        raise Invalid(f'The origin must be "standalone" or an exercise you have answered, not {origin!r}.',
                      code="invalid_origin")


async def list_instances(db: Database, principal: Principal, tool_type: str) -> list[dict[str, Any]]:
    """The reader's instances of one tool, newest first (also for a tool they have not unlocked)."""
    if not has_shape(tool_type):
        raise _no_tool(tool_type)

    def read(conn: sqlite3.Connection) -> list[dict[str, Any]]:
        if conn.execute(Q.tool_type_row, (tool_type,)).fetchone() is None:
            raise _no_tool(tool_type)
        rows = conn.execute(Q.tool_instances_of_type, (principal.user_id, tool_type)).fetchall()
        return _instance_out(conn, principal, rows)

    return await db.read(read)


async def create_instance(db: Database, principal: Principal, tool_type: str, content: Any,
                          origin: str = STANDALONE, skills: list[str] | None = None) -> dict[str, Any]:
    if not has_shape(tool_type):
        raise _no_tool(tool_type)
    normalised = validate_content(tool_type, content)
    instance_id = str(uuid.uuid4())
    sealed = keys.seal_column(principal.dek, normalised, table=TABLE, row_id=instance_id)
    content_hash = keys.content_hash(principal.dek, normalised)
    stamp = now_iso()

    def write(conn: sqlite3.Connection) -> dict[str, Any]:
        user = principal.user_id
        tool = conn.execute(Q.tool_type_row, (tool_type,)).fetchone()
        if tool is None or not tool["is_active"]:
            raise _no_tool(tool_type)
        if not conn.execute(Q.tool_unlocked, (user, tool_type)).fetchone()[0]:
            raise Forbidden(f"Answer the exercise that unlocks {tool_type} first.", code="tool_locked")
        if conn.execute(Q.tool_instance_count, (user, tool_type)).fetchone()[0] >= MAX_INSTANCES_PER_TOOL:
            raise Conflict(f"You already have {MAX_INSTANCES_PER_TOOL} {tool_type} entries; delete one to add another.",
                           code="tool_instance_limit")
        _check_origin(conn, user, origin)
        tags = check_skills(conn, user, skills) if skills else []
        conn.execute(Q.insert_tool_row, (instance_id, user, tool_type, origin, sealed, content_hash, stamp, stamp))
        if tags:
            replace_tags(conn, instance_id, tags, stamp)
        return {"id": instance_id, "tool_type": tool_type, "origin": origin, "content": normalised, "skills": tags,
                "content_hash": content_hash, "created_at": stamp, "updated_at": stamp}

    return await db.write(write)


async def read_instance(db: Database, principal: Principal, instance_id: str) -> dict[str, Any]:
    def read(conn: sqlite3.Connection) -> dict[str, Any]:
        row = conn.execute(Q.tool_instance_of_user, (instance_id, principal.user_id)).fetchone()
        if row is None:
            raise _no_instance(instance_id)
        return _instance_out(conn, principal, [row])[0]

    return await db.read(read)


async def edit_instance(db: Database, principal: Principal, instance_id: str, content: Any,
                        skills: list[str] | None = None) -> dict[str, Any]:
    """Replace the content (and the skills, when given); moves updated_at. Allowed for a tool
    that is locked: the entry is already the reader's."""
    stamp = now_iso()

    def write(conn: sqlite3.Connection) -> dict[str, Any]:
        user = principal.user_id
        row = conn.execute(Q.tool_instance_of_user, (instance_id, user)).fetchone()
        if row is None:
            raise _no_instance(instance_id)
        # The shape depends on the row's tool, so this small CPU work runs inside the job.
        # Fields an import kept that the shape does not know stay (tool_shapes.with_kept).
        stored = keys.open_column(principal.dek, row["content_json"], table=TABLE, row_id=instance_id)
        normalised = with_kept(row["tool_type"], validate_content(row["tool_type"], content), stored)
        tags = check_skills(conn, user, skills) if skills is not None else None
        sealed = keys.seal_column(principal.dek, normalised, table=TABLE, row_id=instance_id)
        content_hash = keys.content_hash(principal.dek, normalised)
        conn.execute(Q.update_tool_row, (row["tool_type"], row["origin"], sealed, content_hash, row["created_at"],
                                         stamp, instance_id, user))
        if tags is not None:
            replace_tags(conn, instance_id, tags, stamp)
        else:
            tags = tags_of(conn, [instance_id])[instance_id]
        return {"id": instance_id, "tool_type": row["tool_type"], "origin": row["origin"], "content": normalised,
                "skills": tags, "content_hash": content_hash, "created_at": row["created_at"], "updated_at": stamp}

    return await db.write(write)


async def delete_instance(db: Database, principal: Principal, instance_id: str) -> None:
    """Delete the entry and its skill tags (exercise_skills has no foreign key to cascade)."""

    def write(conn: sqlite3.Connection) -> None:
        if conn.execute(Q.delete_tool_instance, (instance_id, principal.user_id)).rowcount == 0:
            raise _no_instance(instance_id)
        conn.execute(Q.delete_tags, (instance_id,))

    await db.write(write)
