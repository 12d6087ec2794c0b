"""Tool entries, held to the API's rules (tools.py, tool_shapes.py) and merged without loss.

- A tool this installation does not have (or has retired) is skipped with a warning.
- Content is validated with the API's own rule (`validate_content`) and stored in its
  normalised form. Fields the tool's shape does not know are the reader's writing too: they
  are kept verbatim beside it (`tool_shapes.with_kept`), with a warning. A missing name (the
  shape's one required field: a title, an activity...) becomes the tool's singular name (a
  budget's month: the month it was created), with a warning. Content that still does not fit
  (a value out of range, not an object at all) is skipped with a warning.
- `origin` follows the API's rule: "standalone" or an exercise the reader has answered (after
  this merge), at its answered or current version; any other origin is not stored: the entry
  is kept as standalone, with a warning.
- With the same id as one of the reader's entries of that tool, the newer `updated_at` wins;
  otherwise an entry whose content (keyed hash) the reader already has of that tool is
  already there; otherwise it is added, under its own id when no answer or entry of anyone
  has it.
- At most MAX_INSTANCES_PER_TOOL entries per reader and tool after the merge: a file that
  would go over is refused whole (422 `import_over_limit`), and the write batch checks it
  again.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import msgspec

from app.db.engine import Row, Stmt, changed, guard_query
from app.db.queries import Q
from app.domain import keys
from app.domain.errors import Invalid
from app.domain.json_limits import FreeJSON, check_json
from app.domain.portability.incoming import TOOLS, Incoming, Tool
from app.domain.portability.merge.context import Context, guarded_inserts
from app.domain.skill_tags import json_chunks
from app.domain.tool_shapes import SHAPES, unknown_fields, validate_content, with_kept
from app.domain.tools import MAX_INSTANCES_PER_TOOL, STANDALONE

# The shape's one required field, per tool: what names an entry (msgspec.structs.fields is
# slow, so it is read once).
_NAME_FIELD: dict[str, str] = {
    tool: next(f.encode_name for f in msgspec.structs.fields(shape) if f.required) for tool, shape in SHAPES.items()}


def _content(ctx: Context, tool: Tool, singular: str) -> dict[str, FreeJSON]:
    """The content to store, or Invalid saying why the entry cannot be kept (what was named or
    kept on the way is told only for an entry that is kept)."""
    content = tool.content
    if not isinstance(content, dict):
        return validate_content(tool.tool_type, content)  # raises, in the API's words
    check_json(content, what=f"{tool.tool_type} content", code="invalid_tool_content")
    notes = []
    name = _NAME_FIELD[tool.tool_type]
    given = content.get(name)
    if given is None or (isinstance(given, str) and not given.strip()):
        filled = tool.created_at[:7] if name == "month" else singular
        notes.append(f"{tool.id}: no {name}; it was named {filled!r}")
        content = {**content, name: filled}
    kept = unknown_fields(tool.tool_type, content)
    known = {key: value for key, value in content.items() if key not in kept}
    stored = with_kept(tool.tool_type, validate_content(tool.tool_type, known), content)
    if kept:
        notes.append(f"{tool.id}: fields this installation does not know ({', '.join(kept)}) were kept as they are")
    for note in notes:
        ctx.report.warn("tool_instances", note)
    return stored


def _answered(ctx: Context) -> set[str]:
    """Exercise ids an origin may name after the merge: each answered place's answered and
    current version (tools.py `tool_origin_answered`)."""
    ids: set[str] = set()
    for place, (full_id, _) in ctx.after.items():
        ids.add(full_id)
        current = ctx.known.places.get(place)
        if current is not None:
            ids.add(current["full_exercise_id"])
    return ids


@dataclass
class _Rows:
    """What the merge of the file's tool entries writes, gathered before it is written."""

    hashes: set[tuple[str, str]]  # (tool_type, content_hash) the reader has after the merge so far
    added: Counter[str] = field(default_factory=Counter)
    inserts: list[list[object]] = field(default_factory=list)
    updates: list[list[object]] = field(default_factory=list)


def merge_tools(ctx: Context, book: Incoming) -> None:
    answered = _answered(ctx)
    rows = _Rows(hashes=set(ctx.held.tool_hashes))
    for tool in book.tools:
        _merge_tool(ctx, rows, tool, answered)
    _check_limit(ctx, rows.added)
    ctx.writes += guarded_inserts(ctx.user_id, rows.inserts, lambda row: [row[0], row[1], row[4]], name="tool_changed",
                                  insertable=Q.tools_insertable, insert=Q.import_insert_tools, limit=ctx.chunk_bytes)
    for chunk, count in json_chunks(rows.updates, ctx.chunk_bytes):
        ctx.writes += [Stmt(Q.import_update_tools, (ctx.user_id, chunk)), changed("tool_changed", count)]
    if rows.added:
        ctx.writes.append(guard_query("tool_instance_limit", Q.tool_limit_holds,
                                (ctx.user_id, msgspec.json.encode(sorted(rows.added)).decode(), MAX_INSTANCES_PER_TOOL)))


def _kept_content(ctx: Context, tool: Tool) -> dict[str, FreeJSON] | None:
    """The entry's content to store, or None (with the reason in the report) when it is skipped."""
    singular = ctx.known.tool_types.get(tool.tool_type)
    if singular is None or tool.tool_type not in SHAPES:
        ctx.report.skip("tool_instances", f"unknown tool type {tool.tool_type!r} skipped")
        return None
    try:
        return _content(ctx, tool, singular)
    except Invalid as exc:
        ctx.report.skip("tool_instances", f"{tool.id} skipped: {exc.detail}")
        return None


def _origin(ctx: Context, tool: Tool, answered: set[str]) -> str:
    """The entry's origin, or standalone (with a warning) when it names no exercise answered here."""
    if tool.origin != STANDALONE and tool.origin not in answered:
        ctx.report.warn("tool_instances", f"{tool.id}: origin {tool.origin!r} is not an exercise answered here; "
                                          "the entry was kept as standalone")
        return STANDALONE
    return tool.origin


def _merge_tool(ctx: Context, rows: _Rows, tool: Tool, answered: set[str]) -> None:
    """One entry of the file: an update of the reader's entry with its id, nothing when the reader
    has its content already, or a new entry."""
    content = _kept_content(ctx, tool)
    if content is None:
        return
    origin = _origin(ctx, tool, answered)
    skills = ctx.skills_of(tool.skills, f"tool entry {tool.id}", "tool_instances")
    content_hash = keys.content_hash(ctx.dek, content)
    held = ctx.held.tools.get(tool.id)
    if held is not None and held["tool_type"] == tool.tool_type:
        _merge_held(ctx, rows, tool, held, content, content_hash, skills)
        return
    if (tool.tool_type, content_hash) in rows.hashes:
        ctx.report.add("tool_instances", "unchanged")
        return
    row_id = ctx.row_id(tool.id)
    sealed = ctx.seal(content, TOOLS, row_id)
    rows.inserts.append([row_id, tool.tool_type, origin, sealed, content_hash, tool.created_at, tool.updated_at])
    rows.hashes.add((tool.tool_type, content_hash))
    rows.added[tool.tool_type] += 1
    if skills:
        ctx.tags[row_id] = skills
    ctx.report.add("tool_instances", "inserted")


def _merge_held(ctx: Context, rows: _Rows, tool: Tool, held: Row, content: dict[str, FreeJSON], content_hash: str,
                skills: list[str]) -> None:
    """An entry with the id of one of the reader's entries of that tool: the newer `updated_at` wins."""
    same_tags = set(ctx.held.tags.get(tool.id, [])) == set(skills)
    if held["updated_at"] >= tool.updated_at or (held["content_hash"] == content_hash and same_tags):
        ctx.report.add("tool_instances", "unchanged")
        return
    if held["content_hash"] != content_hash:
        sealed = ctx.seal(content, TOOLS, tool.id)
        rows.updates.append([tool.id, sealed, content_hash, tool.updated_at, held["updated_at"]])
        rows.hashes.add((tool.tool_type, content_hash))
    ctx.retag.append(tool.id)
    ctx.tags[tool.id] = skills
    ctx.report.add("tool_instances", "updated")


def _check_limit(ctx: Context, added: Counter[str]) -> None:
    """At most MAX_INSTANCES_PER_TOOL entries per tool after the merge, or nothing is imported."""
    over = {t: ctx.held.tool_counts[t] + n for t, n in added.items() if ctx.held.tool_counts[t] + n > MAX_INSTANCES_PER_TOOL}
    if over:
        tool_type, total = sorted(over.items())[0]
        raise Invalid(f"Importing this would give you {total} {tool_type} entries; at most {MAX_INSTANCES_PER_TOOL} "
                      "are possible per tool. Nothing was imported.", code="import_over_limit")
