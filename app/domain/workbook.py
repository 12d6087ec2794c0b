"""The workbook: outline and progress, the next exercise, reading and answering exercises.

Rules (DESIGN.md "Workbook semantics", spec §4.2 and §12):
- strictly linear: the exercise at position N opens once the reader has answered N−1; the
  first is always open; editing an earlier answer is allowed; a locked one refuses reads and
  writes (403 `exercise_locked`); optional exercises are answered like the others (any answer
  counts, an empty one included) but do not count towards completion;
- one current answer per reader and exercise: an edit replaces it and moves `responded_at`;
- a module is complete when every required exercise in it has an answer: the `user_modules`
  row appears then (`first_completed_at` set once) and later answers in the module move
  `last_modified_at`; `workbook_complete` follows every required exercise of the workbook;
- answers are sealed with the reader's data key before they reach the database;
- a reader sees the blocks of one A/B variant group (a stable hash of user and exercise place)
  plus every block without a group;
- a title is the Markdown heading that opens an exercise's first block (docs/content.md); the
  API returns it as `title` and the blocks without that heading line.
Each request is one database job: one read, or one write transaction.
"""

from __future__ import annotations

import hashlib
import sqlite3
import uuid
from dataclasses import dataclass
from typing import Any

from app.db.connection import Database
from app.db.queries import Q
from app.domain import keys
from app.domain.errors import Forbidden, Invalid, NotFound
from app.domain.json_limits import check_json
from app.domain.sessions import Principal
from app.domain.skill_tags import check_skills, replace_tags, tags_of
from app.timeutil import now_iso

MAX_RESPONSE_BYTES = 64 * 1024

# Spec §6.2: how each usage type of a source is shown next to an exercise.
SOURCE_LABELS = {
    "direct_quote": "Quoted from {citation}",
    "framework": "Adapted from {citation}",
    "concept": "Based on work by {citation}",
    "adaptation": "Adapted from {citation}",
}


def split_title(text: str | None) -> tuple[str | None, str]:
    """('Title', rest) when the text opens with a Markdown heading line, else (None, text)."""
    if not text:
        return None, text or ""
    first, _, rest = text.partition("\n")
    if first.startswith("#"):
        title = first.lstrip("#").strip()
        return (title or None), rest.lstrip("\n")
    return None, text


def title_of(first_block: str | None, place_label: str) -> str:
    title, _ = split_title(first_block)
    return title or f"Exercise {place_label}"


def place_label(row: sqlite3.Row | dict[str, Any]) -> str:
    return f"{row['part_id']}.{row['module_id']}.{row['exercise_id']}"


def variant_for(user_id: str, place: str, groups: list[str]) -> str | None:
    """A stable choice among an exercise's variant groups, the same across content versions."""
    if not groups:
        return None
    digest = hashlib.sha256(f"dreamtree-variant|{user_id}|{place}".encode()).digest()
    return sorted(groups)[int.from_bytes(digest[:4], "big") % len(groups)]


def status_of(order: int, answered: set[int]) -> str:
    if order in answered:
        return "answered"
    if order == 1 or order - 1 in answered:
        return "available"
    return "locked"


# --- outline ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Skeleton:
    """The outline as the content defines it, the same for every reader: parts, modules and
    places with their titles. Built from the sequence and the content rows, and kept until the
    content's fingerprint changes (an editor's re-seed, from any process)."""

    fingerprint: tuple[Any, ...]
    parts: list[dict[str, Any]]  # [{part_id, title, modules: [{module_id, title, places: [...]}]}]
    required: int
    order_to_id: dict[int, str]


_skeleton: Skeleton | None = None


def content_skeleton(conn: sqlite3.Connection) -> Skeleton:
    """The current skeleton: one cheap fingerprint query when nothing changed, instead of
    reading every exercise's first block and working out its title on every request."""
    global _skeleton
    fingerprint = tuple(conn.execute(Q.content_fingerprint).fetchone())
    cached = _skeleton
    if cached is not None and cached.fingerprint == fingerprint:
        return cached
    places = conn.execute(Q.sequence_outline).fetchall()
    openings = {(r["part_id"], r["module_id"]): split_title(r["content_text"])[0] for r in conn.execute(Q.openings)}
    built = build_skeleton(fingerprint, places, openings)
    _skeleton = built
    return built


def build_skeleton(fingerprint: tuple[Any, ...], places: list[sqlite3.Row],
                   openings: dict[tuple[str, str], str | None]) -> Skeleton:
    parts: list[dict[str, Any]] = []
    required = 0
    for row in places:
        part_id, module_id = row["part_id"], row["module_id"]
        if not parts or parts[-1]["part_id"] != part_id:
            parts.append({"part_id": part_id, "title": openings.get((part_id, "0")) or f"Part {part_id}", "modules": []})
        modules = parts[-1]["modules"]
        module_key = f"{part_id}.{module_id}"
        if not modules or modules[-1]["module_id"] != module_key:
            modules.append({"module_id": module_key, "title": openings.get((part_id, module_id)) or f"Module {module_key}",
                            "places": []})
        modules[-1]["places"].append({
            "order": row["sequence_order"],
            "full_exercise_id": row["full_exercise_id"],
            "title": title_of(row["first_block"], place_label(row)),
            "is_required": bool(row["is_required"]),
            "unlocks_tool": row["unlocks_tool"],
        })
        required += bool(row["is_required"])
    return Skeleton(fingerprint, parts, required, {r["sequence_order"]: r["full_exercise_id"] for r in places})


async def outline(db: Database, principal: Principal) -> dict[str, Any]:
    def read(conn: sqlite3.Connection) -> dict[str, Any]:
        skeleton = content_skeleton(conn)
        answered = {r[0] for r in conn.execute(Q.answered_orders, (principal.user_id,))}
        completed = {r["module_id"] for r in conn.execute(Q.user_modules, (principal.user_id,))}
        return build_outline(skeleton, answered, completed)

    return await db.read(read)


def build_outline(skeleton: Skeleton, answered: set[int], completed: set[str]) -> dict[str, Any]:
    """The reader's outline: the skeleton with their status per exercise and their progress."""
    done = 0
    parts = []
    for part in skeleton.parts:
        modules = []
        for module in part["modules"]:
            exercises = []
            for place in module["places"]:
                status = status_of(place["order"], answered)
                done += place["is_required"] and status == "answered"
                exercises.append({"full_exercise_id": place["full_exercise_id"], "title": place["title"],
                                  "status": status, "is_required": place["is_required"],
                                  "unlocks_tool": place["unlocks_tool"]})
            modules.append({"module_id": module["module_id"], "title": module["title"],
                            "completed": module["module_id"] in completed, "exercises": exercises})
        parts.append({"part_id": part["part_id"], "title": part["title"], "modules": modules})
    required = skeleton.required
    percent = 100 if required == 0 else (100 * done) // required
    return {"parts": parts, "progress": {"answered": done, "required": required, "percent": percent},
            "next_exercise_id": skeleton.order_to_id.get(max(answered, default=0) + 1)}


async def user_modules(db: Database, principal: Principal) -> list[dict[str, Any]]:
    rows = await db.read(lambda c: c.execute(Q.user_modules, (principal.user_id,)).fetchall())
    return [dict(r) for r in rows]


# --- one exercise ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    id: str
    response: Any
    responded_at: str
    full_exercise_id: str
    skills: list[str]


def open_answer(conn: sqlite3.Connection, principal: Principal, row: sqlite3.Row | None) -> Answer | None:
    if row is None:
        return None
    response = keys.open_column(principal.dek, row["response_json"], table="exercise_responses", row_id=row["id"])
    return Answer(row["id"], response, row["responded_at"], row["full_exercise_id"], tags_of(conn, [row["id"]])[row["id"]])


def answer_out(answer: Answer | None) -> dict[str, Any] | None:
    if answer is None:
        return None
    return {"response": answer.response, "responded_at": answer.responded_at,
            "full_exercise_id": answer.full_exercise_id, "skills": answer.skills}


def read_exercise(conn: sqlite3.Connection, principal: Principal, place: sqlite3.Row) -> dict[str, Any]:
    """The exercise in full for this reader; Forbidden when it is still locked."""
    order = place["sequence_order"]
    if order > 1 and not conn.execute(Q.answered_at_order, (principal.user_id, order - 1)).fetchone()[0]:
        if not conn.execute(Q.answered_at_order, (principal.user_id, order)).fetchone()[0]:
            raise Forbidden("Finish the exercises before this one first.", code="exercise_locked")
    full = place["full_exercise_id"]
    rows = conn.execute(Q.exercise_blocks, (full,)).fetchall()
    label = place_label(place)
    variant = variant_for(principal.user_id, label, sorted({r["variant_group"] for r in rows if r["variant_group"]}))
    # The title heading opens the first block, whichever variant group that block belongs to.
    title, first_text = split_title(rows[0]["content_text"]) if rows else (None, "")
    blocks = []
    for i, r in enumerate(rows):
        if r["variant_group"] not in (None, variant):
            continue
        text = first_text if i == 0 else r["content_text"]
        blocks.append({"content_type": r["content_type"], "content_text": text, "display_order": r["display_order"]})
    sources = [
        {
            "reference_id": s["reference_id"], "usage_type": s["usage_type"], "citation_number": s["citation_number"],
            "label": SOURCE_LABELS[s["usage_type"]].format(
                citation=s["full_citation"] if s["usage_type"] == "direct_quote" else s["short_citation"]),
            "notes": s["notes"],
        }
        for s in conn.execute(Q.exercise_sources, (full,))
        if s["usage_type"] in SOURCE_LABELS  # "inspiration": credits page only
    ]
    answer = open_answer(conn, principal, conn.execute(
        Q.response_at_place, (principal.user_id, place["part_id"], place["module_id"], place["exercise_id"])).fetchone())
    return {
        "full_exercise_id": full, "part_id": place["part_id"], "module_id": f"{place['part_id']}.{place['module_id']}",
        "exercise_id": place["exercise_id"], "version": place["version"], "title": title or f"Exercise {label}",
        "blocks": blocks, "is_required": bool(place["is_required"]), "unlocks_tool": place["unlocks_tool"],
        "sources": sources, "response": answer_out(answer), "variant": variant,
    }


async def exercise(db: Database, principal: Principal, full_exercise_id: str) -> dict[str, Any]:
    def read(conn: sqlite3.Connection) -> dict[str, Any]:
        place = conn.execute(Q.place_by_id, (full_exercise_id,)).fetchone()
        if place is None:
            raise NotFound(f"No exercise {full_exercise_id}.")
        return read_exercise(conn, principal, place)

    return await db.read(read)


async def next_exercise(db: Database, principal: Principal) -> dict[str, Any]:
    def read(conn: sqlite3.Connection) -> dict[str, Any]:
        place = conn.execute(Q.next_exercise, (principal.user_id,)).fetchone()
        if place is None:
            return {"complete": True}
        return read_exercise(conn, principal, place)

    return await db.read(read)


# --- answering --------------------------------------------------------------------------------


def check_response_size(response: Any) -> None:
    check_json(response, what="The answer")
    if len(keys.canonical_json(response)) > MAX_RESPONSE_BYTES:
        raise Invalid(f"An answer can be at most {MAX_RESPONSE_BYTES // 1024} KiB.", code="response_too_large")


async def answer(db: Database, principal: Principal, full_exercise_id: str, response: Any,
                 skills: list[str] | None) -> dict[str, Any]:
    """Save or edit the reader's answer; report module completion, unlocks and what is next."""
    check_response_size(response)
    stamp = now_iso()

    def write(conn: sqlite3.Connection) -> dict[str, Any]:
        user = principal.user_id
        place = conn.execute(Q.place_by_id, (full_exercise_id,)).fetchone()
        if place is None:
            raise NotFound(f"No exercise {full_exercise_id}.")
        order = place["sequence_order"]
        part, module, exercise_id = place["part_id"], place["module_id"], place["exercise_id"]
        existing = conn.execute(Q.response_at_place, (user, part, module, exercise_id)).fetchone()
        if existing is None and order > 1 and not conn.execute(Q.answered_at_order, (user, order - 1)).fetchone()[0]:
            raise Forbidden("Finish the exercises before this one first.", code="exercise_locked")
        tags = check_skills(conn, user, skills) if skills is not None else None
        tool = place["unlocks_tool"]
        newly_unlocked = bool(tool) and not conn.execute(Q.tool_unlocked, (user, tool)).fetchone()[0]
        response_id = existing["id"] if existing else str(uuid.uuid4())
        sealed = keys.seal_column(principal.dek, response, table="exercise_responses", row_id=response_id)
        if existing:
            conn.execute(Q.update_response, (place["version"], full_exercise_id, sealed, stamp, response_id, user))
        else:
            conn.execute(Q.insert_response, (response_id, user, part, module, exercise_id, place["version"],
                                             full_exercise_id, sealed, stamp))
        if tags is not None:
            replace_tags(conn, response_id, tags, stamp)
        module_key = f"{part}.{module}"
        module_completed = False
        if conn.execute(Q.user_module, (user, module_key)).fetchone():
            conn.execute(Q.touch_module, (stamp, user, module_key))
        elif conn.execute(Q.module_required_left, (user, part, module)).fetchone()[0] == 0:
            conn.execute(Q.complete_module, (user, module_key, stamp, stamp))
            module_completed = True
        complete = conn.execute(Q.workbook_required_left, (user,)).fetchone()[0] == 0
        conn.execute(Q.set_workbook_complete, (int(complete), stamp, user, int(complete)))
        following = conn.execute(Q.next_exercise, (user,)).fetchone()
        return {
            "response": {"response": response, "responded_at": stamp, "full_exercise_id": full_exercise_id,
                         "skills": tags if tags is not None else tags_of(conn, [response_id])[response_id]},
            "module_completed": module_completed,
            "unlocked_tool": tool if newly_unlocked else None,
            "next_exercise_id": following["full_exercise_id"] if following else None,
            "workbook_complete": complete,
        }

    return await db.write(write)
