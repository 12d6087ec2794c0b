"""Tools: the catalogue with each reader's unlocks, and the reader's own tool instances.

Rules (docs/tools.md):
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
Each request is one unit of work (app/db/engine.py): a read is one batch; a change is one
read batch, a decision in Python and one atomic write batch that guards itself:
- create: the INSERT itself counts the reader's entries of the tool, so a create that raced
  another can never make the 1,001st (`changed("tool_instance_limit")` → 409);
- edit: the shape depends on the row's tool, known only after the read, so the work reads,
  validates, seals and hashes, then writes only the row it read (id, reader, updated_at);
  an edit or a delete in between fails `changed("tool_instance_changed")` and the work runs
  again on fresh reads (an entry deleted meanwhile is then 404), so content and tags always
  come from one edit;
- delete: the entry's tags (owner-scoped) and the entry in one batch; a delete in between
  fails `changed("tool_instance_gone")` and the retry answers 404.
Validation, hashing and sealing happen before the work when the tool type is known from the
path (create), inside the work when it is not (edit).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from typing import Final, Literal

import msgspec

from app.db.engine import Engine, GuardFailed, Read, Row, Stmt, Work, Write, changed
from app.db.queries import Q
from app.domain import keys
from app.domain.errors import Conflict, Forbidden, Invalid, NotFound
from app.domain.json_limits import FreeJSON
from app.domain.sessions import Principal
from app.domain.skill_tags import checked_skills, read_with_skills, tag_statements, usable_skills
from app.domain.tool_shapes import content_schema, has_shape, validate_content, validated, with_kept
from app.timeutil import now_iso

MAX_INSTANCES_PER_TOOL: Final = 1000
STANDALONE: Final = "standalone"
TABLE: Final = "tool_instances"

_EXERCISE_ID = re.compile(r"([0-9A-Za-z_-]{1,20})\.([0-9A-Za-z_-]{1,20})\.([0-9A-Za-z_-]{1,20})\.v([0-9]{1,9})")


# --- the shapes the API answers with -----------------------------------------------------------


class ToolInfo(msgspec.Struct, frozen=True):
    """One tool of the catalogue, with this reader's unlock and how many entries they have."""

    id: str
    singular_name: str
    plural_name: str
    icon_name: str
    has_reminder: bool
    reminder_frequency: Literal["daily", "weekly", "monthly"] | None
    unlocked: bool
    instance_count: int
    content_schema: dict[str, object]
    """The JSON Schema of the tool's content (app/domain/tool_shapes.py)."""


class ToolInstance(msgspec.Struct, frozen=True):
    """One of the reader's tool entries: `content` is theirs, in its normalised form."""

    id: str
    tool_type: str
    origin: str
    content: FreeJSON
    skills: list[str]
    content_hash: str
    created_at: str
    updated_at: str


def _no_tool(tool_type: str) -> NotFound:
    return NotFound(f"No tool {tool_type}.", code="tool_not_found")


def _no_instance(instance_id: str) -> NotFound:
    return NotFound(f"No tool entry {instance_id}.", code="tool_instance_not_found")


def _at_limit(tool_type: str) -> Conflict:
    return Conflict(f"You already have {MAX_INSTANCES_PER_TOOL} {tool_type} entries; delete one to add another.",
                    code="tool_instance_limit")


def _opened(principal: Principal, row: Row, skills: list[str]) -> ToolInstance:
    return ToolInstance(
        id=row["id"], tool_type=row["tool_type"], origin=row["origin"],
        content=keys.open_column(principal.dek, row["content_json"], table=TABLE, row_id=row["id"]),
        skills=skills, content_hash=row["content_hash"], created_at=row["created_at"], updated_at=row["updated_at"],
    )


# --- the catalogue ---------------------------------------------------------------------------


def tools_work(principal: Principal) -> Work[list[ToolInfo]]:
    (rows,) = yield Read(Stmt(Q.tool_catalogue, (principal.user_id,)))
    return [
        ToolInfo(
            id=r["id"], singular_name=r["singular_name"], plural_name=r["plural_name"], icon_name=r["icon_name"],
            has_reminder=bool(r["has_reminder"]), reminder_frequency=r["reminder_frequency"],
            unlocked=bool(r["unlocked"]), instance_count=r["instance_count"], content_schema=content_schema(r["id"]),
        )
        for r in rows.rows
        if has_shape(r["id"])
    ]


async def list_tools(db: Engine, principal: Principal) -> list[ToolInfo]:
    """Every active tool this service has a shape for, with this reader's unlock and count."""
    return await db.query(lambda: tools_work(principal), principal)


# --- reading entries ---------------------------------------------------------------------------


def _tags_by_entry(rows: Sequence[Row]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for row in rows:
        found.setdefault(row[0], []).append(row[1])
    return found


def instances_work(principal: Principal, tool_type: str) -> Work[list[ToolInstance]]:
    user = principal.user_id
    tool, entries, tags = yield Read(
        Stmt(Q.tool_type_row, (tool_type,)),
        Stmt(Q.tool_instances_of_type, (user, tool_type)),
        Stmt(Q.tool_tags_of_type, (user, tool_type)),
    )
    if tool.one() is None:
        raise _no_tool(tool_type)
    by_entry = _tags_by_entry(tags.rows)
    return [_opened(principal, row, by_entry.get(row["id"], [])) for row in entries.rows]


async def list_instances(db: Engine, principal: Principal, tool_type: str) -> list[ToolInstance]:
    """The reader's instances of one tool, newest first (also for a tool they have not unlocked)."""
    if not has_shape(tool_type):
        raise _no_tool(tool_type)
    return await db.query(lambda: instances_work(principal, tool_type), principal)


def instance_work(principal: Principal, instance_id: str) -> Work[ToolInstance]:
    entry, tags = yield Read(
        Stmt(Q.tool_instance_of_user, (instance_id, principal.user_id)),
        Stmt(Q.tags_of_own, (instance_id, principal.user_id)),
    )
    row = entry.one()
    if row is None:
        raise _no_instance(instance_id)
    return _opened(principal, row, tags.column())


async def read_instance(db: Engine, principal: Principal, instance_id: str) -> ToolInstance:
    return await db.query(lambda: instance_work(principal, instance_id), principal)


# --- creating ----------------------------------------------------------------------------------


def _origin_read(user_id: str, origin: str) -> Stmt | None:
    """The read that decides an origin naming an exercise (None for standalone or nonsense)."""
    place = _EXERCISE_ID.fullmatch(origin)
    if origin == STANDALONE or place is None:
        return None
    return Stmt(Q.tool_origin_answered, (user_id, *place.groups()[:3], origin))


def create_work(principal: Principal, tool_type: str, normalised: dict[str, FreeJSON], origin: str,
                skills: list[str] | None, instance_id: str, sealed: str, content_hash: str,
                stamp: str) -> Work[ToolInstance]:
    """Check the tool, its unlock, the limit, the origin and the skills in one read; write the
    entry (only while the reader is under the limit) and its tags in one batch."""
    user = principal.user_id
    origin_read = _origin_read(user, origin)
    reads = [Stmt(Q.tool_for_reader, (user, tool_type))]
    if origin_read is not None:
        reads.append(origin_read)
    if skills:
        reads.append(usable_skills(user, skills))
    found = yield Read(*reads)
    tool = found[0].one()
    if tool is None or not tool["is_active"]:
        raise _no_tool(tool_type)
    if not tool["unlocked"]:
        raise Forbidden(f"Answer the exercise that unlocks {tool_type} first.", code="tool_locked")
    limit = MAX_INSTANCES_PER_TOOL
    if tool["instance_count"] >= limit:
        raise _at_limit(tool_type)
    if origin != STANDALONE and (origin_read is None or not found[1].value()):
        raise Invalid(f'The origin must be "standalone" or an exercise you have answered, not {origin!r}.',
                      code="invalid_origin")
    tags = checked_skills(skills, found[-1] if skills else None) or []
    try:
        yield Write(
            Stmt(Q.insert_tool_instance, (instance_id, user, tool_type, origin, sealed, content_hash, stamp, limit)),
            changed("tool_instance_limit"),
            tag_statements(user, instance_id, tags, stamp) if tags else (),
        )
    except GuardFailed as failed:
        if failed.name != "tool_instance_limit":
            raise
        raise _at_limit(tool_type) from None  # entries were created since the count was read
    return ToolInstance(instance_id, tool_type, origin, normalised, tags, content_hash, stamp, stamp)


async def create_instance(db: Engine, principal: Principal, tool_type: str, content: FreeJSON,
                          origin: str = STANDALONE, skills: list[str] | None = None) -> ToolInstance:
    if not has_shape(tool_type):
        raise _no_tool(tool_type)
    normalised, canonical = validated(tool_type, content)  # canonical once: measured, sealed and hashed
    instance_id = str(uuid.uuid4())
    sealed = keys.seal_column_of(principal.dek, canonical, table=TABLE, row_id=instance_id)
    content_hash = keys.content_hash_of(principal.dek, canonical)
    stamp = now_iso()
    return await db.change(lambda: create_work(principal, tool_type, normalised, origin, skills, instance_id, sealed,
                                               content_hash, stamp), principal)


# --- editing and deleting ------------------------------------------------------------------------


def edit_work(principal: Principal, instance_id: str, content: FreeJSON, skills: list[str] | None,
              stamp: str) -> Work[ToolInstance]:
    """Read the entry, validate the content against its tool, seal and hash it, then write the
    content and the tags (when given) only over the row that was read."""
    user = principal.user_id
    found = yield read_with_skills(Stmt(Q.tool_instance_to_edit, (instance_id, user)), user, skills)
    row = found[0].one()
    if row is None:
        raise _no_instance(instance_id)
    # Fields an import kept that the tool's shape does not know stay with the entry.
    stored = keys.open_column(principal.dek, row["content_json"], table=TABLE, row_id=instance_id)
    normalised = with_kept(row["tool_type"], validate_content(row["tool_type"], content), stored)
    tags = checked_skills(skills, found[1] if skills else None)
    sealed = keys.seal_column(principal.dek, normalised, table=TABLE, row_id=instance_id)
    content_hash = keys.content_hash(principal.dek, normalised)
    written = yield Write(
        Stmt(Q.update_tool_instance, (sealed, content_hash, stamp, instance_id, user, row["updated_at"])),
        changed("tool_instance_changed"),
        tag_statements(user, instance_id, tags, stamp) if tags is not None else [Stmt(Q.tags_of_own, (instance_id, user))],
    )
    return ToolInstance(instance_id, row["tool_type"], row["origin"], normalised,
                        tags if tags is not None else written[-1].column(), content_hash, row["created_at"], stamp)


async def edit_instance(db: Engine, principal: Principal, instance_id: str, content: FreeJSON,
                        skills: list[str] | None = None) -> ToolInstance:
    """Replace the content (and the skills, when given); moves updated_at. Allowed for a tool
    that is locked: the entry is already the reader's."""
    stamp = now_iso()
    return await db.change(lambda: edit_work(principal, instance_id, content, skills, stamp), principal)


def delete_work(principal: Principal, instance_id: str) -> Work[None]:
    """The entry and its skill tags (exercise_skills has no foreign key to cascade), in one
    batch: the tags first, while the row that makes them the reader's still exists."""
    user = principal.user_id
    (entry,) = yield Read(Stmt(Q.tool_instance_head, (instance_id, user)))
    if entry.one() is None:
        raise _no_instance(instance_id)
    yield Write(
        Stmt(Q.delete_own_tags, (instance_id, user)),
        Stmt(Q.delete_tool_instance, (instance_id, user)),
        changed("tool_instance_gone"),
    )


async def delete_instance(db: Engine, principal: Principal, instance_id: str) -> None:
    await db.change(lambda: delete_work(principal, instance_id), principal)
