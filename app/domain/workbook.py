"""The workbook: outline and progress, the next exercise, reading and answering exercises.

Rules (spec §4.2 and §12, docs/spec/dreamtree-schema.md):
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
Each request is one unit of work (app/db/engine.py): one batch of reads, or reads, a decision
and one atomic write batch.

Long on purpose: the outline, progress, reading and answering all follow the one linear rule
above and share the content skeleton; apart, each module would restate them.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, field
from typing import Literal

import msgspec

from app.db.engine import Engine, Read, Row, Stmt, Work, Write, changed
from app.db.queries import Q
from app.domain import keys
from app.domain.errors import Forbidden, Invalid, NotFound
from app.domain.json_limits import FreeJSON, check_json
from app.domain.sessions import Principal
from app.domain.skill_tags import checked_skills, read_with_skills, tag_statements
from app.timeutil import now_iso

MAX_RESPONSE_BYTES = 64 * 1024

# Spec §6.2: how each usage type of a source is shown next to an exercise.
SOURCE_LABELS = {
    "direct_quote": "Quoted from {citation}",
    "framework": "Adapted from {citation}",
    "concept": "Based on work by {citation}",
    "adaptation": "Adapted from {citation}",
}


Status = Literal["answered", "available", "locked"]


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


def place_label(row: Row | Mapping[str, object]) -> str:
    return f"{row['part_id']}.{row['module_id']}.{row['exercise_id']}"


def variant_for(user_id: str, place: str, groups: list[str]) -> str | None:
    """A stable choice among an exercise's variant groups, the same across content versions."""
    if not groups:
        return None
    digest = hashlib.sha256(f"dreamtree-variant|{user_id}|{place}".encode()).digest()
    return sorted(groups)[int.from_bytes(digest[:4], "big") % len(groups)]


def status_of(order: int, answered: Set[int]) -> Status:
    if order in answered:
        return "answered"
    if order == 1 or order - 1 in answered:
        return "available"
    return "locked"


# --- the shapes the API answers with -----------------------------------------------------------

class ExerciseInOutline(msgspec.Struct, frozen=True):
    full_exercise_id: str
    title: str
    status: Status
    is_required: bool
    unlocks_tool: str | None


class ModuleInOutline(msgspec.Struct, frozen=True):
    module_id: str
    title: str
    completed: bool
    exercises: list[ExerciseInOutline]


class PartInOutline(msgspec.Struct, frozen=True):
    part_id: str
    title: str
    modules: list[ModuleInOutline]


class Progress(msgspec.Struct, frozen=True):
    answered: int
    required: int
    percent: int


class Outline(msgspec.Struct, frozen=True):
    """The workbook as one reader sees it: every exercise with its status, and their progress."""

    parts: list[PartInOutline]
    progress: Progress
    next_exercise_id: str | None


class Block(msgspec.Struct, frozen=True):
    content_type: str
    content_text: str
    display_order: int


class Source(msgspec.Struct, frozen=True):
    reference_id: str
    usage_type: str
    citation_number: int
    label: str
    notes: str | None


class AnswerOut(msgspec.Struct, frozen=True):
    """A reader's current answer to an exercise (the response as they sent it)."""

    response: FreeJSON
    responded_at: str
    full_exercise_id: str
    skills: list[str]


class Exercise(msgspec.Struct, frozen=True):
    """One exercise in full: its blocks for this reader's variant, sources and their answer."""

    full_exercise_id: str
    part_id: str
    module_id: str
    exercise_id: str
    version: int
    title: str
    blocks: list[Block]
    is_required: bool
    unlocks_tool: str | None
    sources: list[Source]
    response: AnswerOut | None
    variant: str | None


class WorkbookComplete(msgspec.Struct, frozen=True):
    """What `next` answers once every exercise has an answer."""

    complete: Literal[True]


class AnswerSaved(msgspec.Struct, frozen=True):
    response: AnswerOut
    module_completed: bool
    unlocked_tool: str | None
    next_exercise_id: str | None
    workbook_complete: bool


class CompletedModule(msgspec.Struct, frozen=True):
    module_id: str
    first_completed_at: str
    last_modified_at: str


# --- outline ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Place:
    order: int
    full_exercise_id: str
    title: str
    is_required: bool
    unlocks_tool: str | None


@dataclass(frozen=True)
class Skeleton:
    """The outline as the content defines it, the same for every reader: parts, modules and
    places with their titles. Built from the sequence and the content rows, and kept until the
    content's fingerprint changes (an editor's re-seed, from any process)."""

    fingerprint: tuple[object, ...]
    parts: list[tuple[str, str, list[tuple[str, str, list[Place]]]]]  # (part, title, [(module, title, places)])
    required: int
    order_to_id: dict[int, str]
    # Outlines already built on this skeleton, by (answered places, completed modules): an
    # outline is a pure function of the three, and in a linear workbook readers share a few
    # dozen of them. Frozen shapes, never changed once built; dropped with the skeleton.
    outlines: dict[tuple[frozenset[int], frozenset[str]], Outline] = field(default_factory=dict, compare=False,
                                                                          repr=False)


_skeleton: Skeleton | None = None


def content_skeleton(fingerprint: tuple[object, ...]) -> Work[Skeleton]:
    """The skeleton for this content fingerprint: kept in memory, so the outline costs one
    cheap fingerprint query instead of every exercise's first block and title. Another
    process's re-seed changes the fingerprint read in the same batch, so it is never stale."""
    global _skeleton
    cached = _skeleton
    if cached is not None and cached.fingerprint == fingerprint:
        return cached
    places, openings = yield Read(Stmt(Q.sequence_outline), Stmt(Q.openings))
    built = build_skeleton(fingerprint, places.rows,
                           {(r["part_id"], r["module_id"]): split_title(r["content_text"])[0] for r in openings.rows})
    _skeleton = built
    return built


def build_skeleton(fingerprint: tuple[object, ...], places: Sequence[Row],
                   openings: dict[tuple[str, str], str | None]) -> Skeleton:
    parts: list[tuple[str, str, list[tuple[str, str, list[Place]]]]] = []
    required = 0
    for row in places:
        part_id, module_id = row["part_id"], row["module_id"]
        if not parts or parts[-1][0] != part_id:
            parts.append((part_id, openings.get((part_id, "0")) or f"Part {part_id}", []))
        modules = parts[-1][2]
        module_key = f"{part_id}.{module_id}"
        if not modules or modules[-1][0] != module_key:
            modules.append((module_key, openings.get((part_id, module_id)) or f"Module {module_key}", []))
        modules[-1][2].append(Place(row["sequence_order"], row["full_exercise_id"],
                                    title_of(row["first_block"], place_label(row)), bool(row["is_required"]),
                                    row["unlocks_tool"]))
        required += bool(row["is_required"])
    return Skeleton(fingerprint, parts, required, {r["sequence_order"]: r["full_exercise_id"] for r in places})


def outline_work(principal: Principal) -> Work[Outline]:
    fingerprint, answered, completed = yield Read(
        Stmt(Q.content_fingerprint),
        Stmt(Q.answered_orders, (principal.user_id,)),
        Stmt(Q.user_modules, (principal.user_id,)),
    )
    skeleton = yield from content_skeleton(tuple(fingerprint.rows[0]))
    return outline_of(skeleton, frozenset(answered.column()), frozenset(r["module_id"] for r in completed.rows))


async def outline(db: Engine, principal: Principal) -> Outline:
    return await db.query(lambda: outline_work(principal), principal)


MAX_KEPT_OUTLINES = 1024


def outline_of(skeleton: Skeleton, answered: frozenset[int], completed: frozenset[str]) -> Outline:
    """The reader's outline, built once per skeleton and state (`Skeleton.outlines`). The
    works run on several database threads: a race builds the same outline twice, harmlessly."""
    kept = skeleton.outlines
    key = (answered, completed)
    found = kept.get(key)
    if found is None:
        if len(kept) >= MAX_KEPT_OUTLINES:  # content with unusual orders; start over rather than grow
            kept.clear()
        found = kept[key] = build_outline(skeleton, answered, completed)
    return found


def build_outline(skeleton: Skeleton, answered: Set[int], completed: Set[str]) -> Outline:
    """The reader's outline: the skeleton with their status per exercise and their progress."""
    done = 0
    parts = []
    for part_id, part_title, modules in skeleton.parts:
        out_modules = []
        for module_id, module_title, places in modules:
            exercises = []
            for place in places:
                status = status_of(place.order, answered)
                done += place.is_required and status == "answered"
                exercises.append(ExerciseInOutline(place.full_exercise_id, place.title, status, place.is_required,
                                                   place.unlocks_tool))
            out_modules.append(ModuleInOutline(module_id, module_title, module_id in completed, exercises))
        parts.append(PartInOutline(part_id, part_title, out_modules))
    required = skeleton.required
    percent = 100 if required == 0 else (100 * done) // required
    return Outline(parts, Progress(done, required, percent), skeleton.order_to_id.get(max(answered, default=0) + 1))


def modules_work(principal: Principal) -> Work[list[CompletedModule]]:
    (rows,) = yield Read(Stmt(Q.user_modules, (principal.user_id,)))
    return [CompletedModule(r["module_id"], r["first_completed_at"], r["last_modified_at"]) for r in rows.rows]


async def user_modules(db: Engine, principal: Principal) -> list[CompletedModule]:
    return await db.query(lambda: modules_work(principal), principal)


# --- one exercise ---------------------------------------------------------------------------


def _locked() -> Forbidden:
    return Forbidden("Finish the exercises before this one first.", code="exercise_locked")


def build_exercise(principal: Principal, place: Row, blocks: Sequence[Row], sources: Sequence[Row],
                   answer: Row | None, skills: list[str]) -> Exercise:
    """The exercise in full for this reader."""
    full = place["full_exercise_id"]
    label = place_label(place)
    variant = variant_for(principal.user_id, label, sorted({r["variant_group"] for r in blocks if r["variant_group"]}))
    # The title heading opens the first block, whichever variant group that block belongs to.
    title, first_text = split_title(blocks[0]["content_text"]) if blocks else (None, "")
    shown = [
        Block(r["content_type"], first_text if i == 0 else r["content_text"], r["display_order"])
        for i, r in enumerate(blocks)
        if r["variant_group"] in (None, variant)
    ]
    credited = [
        Source(s["reference_id"], s["usage_type"], s["citation_number"],
               SOURCE_LABELS[s["usage_type"]].format(
                   citation=s["full_citation"] if s["usage_type"] == "direct_quote" else s["short_citation"]),
               s["notes"])
        for s in sources
        if s["usage_type"] in SOURCE_LABELS  # "inspiration": credits page only
    ]
    response = None
    if answer is not None:
        opened = keys.open_column(principal.dek, answer["response_json"], table="exercise_responses", row_id=answer["id"])
        response = AnswerOut(opened, answer["responded_at"], answer["full_exercise_id"], skills)
    return Exercise(
        full_exercise_id=full, part_id=place["part_id"], module_id=f"{place['part_id']}.{place['module_id']}",
        exercise_id=place["exercise_id"], version=place["version"], title=title or f"Exercise {label}",
        blocks=shown, is_required=bool(place["is_required"]), unlocks_tool=place["unlocks_tool"],
        sources=credited, response=response, variant=variant,
    )


def exercise_work(principal: Principal, full_exercise_id: str) -> Work[Exercise]:
    user = principal.user_id
    place, blocks, sources, answer, tags = yield Read(
        Stmt(Q.place_state, (full_exercise_id, user)),
        Stmt(Q.exercise_blocks, (full_exercise_id, user)),
        Stmt(Q.exercise_sources, (full_exercise_id, user)),
        Stmt(Q.response_at_exercise, (full_exercise_id, user)),
        Stmt(Q.tags_at_exercise, (full_exercise_id, user)),
    )
    row = place.one()
    if row is None:
        raise NotFound(f"No exercise {full_exercise_id}.")
    if not row["is_open"] and row["response_id"] is None:
        raise _locked()
    return build_exercise(principal, row, blocks.rows, sources.rows, answer.one(), tags.column())


async def exercise(db: Engine, principal: Principal, full_exercise_id: str) -> Exercise:
    return await db.query(lambda: exercise_work(principal, full_exercise_id), principal)


def next_work(principal: Principal) -> Work[Exercise | WorkbookComplete]:
    """The next exercise: by definition open and not yet answered (it follows the furthest
    place the reader answered), so its blocks and sources are all there is to read."""
    user = principal.user_id
    place, blocks, sources = yield Read(
        Stmt(Q.next_exercise, (user,)),
        Stmt(Q.exercise_blocks, (None, user)),
        Stmt(Q.exercise_sources, (None, user)),
    )
    row = place.one()
    if row is None:
        return WorkbookComplete(complete=True)
    return build_exercise(principal, row, blocks.rows, sources.rows, None, [])


async def next_exercise(db: Engine, principal: Principal) -> Exercise | WorkbookComplete:
    return await db.query(lambda: next_work(principal), principal)


# --- answering --------------------------------------------------------------------------------


def is_empty(response: FreeJSON) -> bool:
    """True for an answer that says nothing: null, blank text, and lists or objects holding
    only such values (`""`, `{}`, `{"answer": "  "}`). Numbers and booleans say something."""
    if response is None:
        return True
    if isinstance(response, str):
        return not response.strip()
    if isinstance(response, dict):
        return all(is_empty(v) for v in response.values())
    if isinstance(response, list):
        return all(is_empty(v) for v in response)
    return False


def check_not_empty(response: FreeJSON, is_required: bool) -> None:
    """A required exercise needs an answer that says something: module and workbook completion
    can never follow from an empty one (optional exercises take any answer)."""
    if is_required and is_empty(response):
        raise Invalid("This exercise needs an answer; write something before saving.", code="empty_answer")


def check_response_size(response: FreeJSON) -> keys.Canonical:
    """The answer's canonical bytes (what is sealed), once it is within the JSON limits and
    MAX_RESPONSE_BYTES."""
    check_json(response, what="The answer")
    canonical = keys.canonical_json(response)
    if len(canonical) > MAX_RESPONSE_BYTES:
        raise Invalid(f"An answer can be at most {MAX_RESPONSE_BYTES // 1024} KiB.", code="response_too_large")
    return canonical


def answer_work(principal: Principal, full_exercise_id: str, response: FreeJSON, skills: list[str] | None,
                stamp: str, canonical: keys.Canonical) -> Work[AnswerSaved]:
    """Save or edit the reader's answer; report module completion, unlocks and what is next.

    Reads the place and what the reader did there, decides, then writes one batch: the answer
    (a first answer only while there is none at the place, an edit only of the row read), its
    tags, the module row when the module is complete after it, and workbook_complete, and
    reads back the workbook's state after the write. `canonical` is the response's canonical
    bytes (`check_response_size`), sealed as they are."""
    user = principal.user_id
    found = yield read_with_skills(Stmt(Q.place_state, (full_exercise_id, user)), user, skills)
    place = found[0].one()
    if place is None:
        raise NotFound(f"No exercise {full_exercise_id}.")
    existing = place["response_id"]
    if existing is None and not place["is_open"]:
        raise _locked()
    check_not_empty(response, bool(place["is_required"]))
    tags = checked_skills(skills, found[1] if skills else None)
    part, module, exercise_id = place["part_id"], place["module_id"], place["exercise_id"]
    response_id = existing or str(uuid.uuid4())
    sealed = keys.seal_column_of(principal.dek, canonical, table="exercise_responses", row_id=response_id)
    if existing:
        saved = [Stmt(Q.update_response, (place["version"], full_exercise_id, sealed, stamp, response_id, user)),
                 changed("answer_gone")]
    else:
        saved = [Stmt(Q.insert_first_response, (response_id, user, part, module, exercise_id, place["version"],
                                                full_exercise_id, sealed, stamp)),
                 changed("answer_exists")]
    writes = [*saved]
    if tags is not None:
        writes += tag_statements(user, response_id, tags, stamp)
    writes.append(Stmt(Q.touch_module, (stamp, user, part, module)))
    completion = len(writes)
    writes += [Stmt(Q.complete_module, (stamp, user, part, module)),
               Stmt(Q.update_workbook_complete, (stamp, user)),
               Stmt(Q.workbook_state, (user,)),
               Stmt(Q.tags_of_own, (response_id, user))]
    results = yield Write(writes)
    after = results[-2].one()
    assert after is not None
    tool = place["unlocks_tool"]
    return AnswerSaved(
        response=AnswerOut(response, stamp, full_exercise_id, results[-1].column()),
        module_completed=results[completion].changes == 1,
        unlocked_tool=tool if tool and not place["tool_was_unlocked"] else None,
        next_exercise_id=after["next_exercise_id"],
        workbook_complete=bool(after["workbook_complete"]),
    )


async def answer(db: Engine, principal: Principal, full_exercise_id: str, response: FreeJSON,
                 skills: list[str] | None) -> AnswerSaved:
    canonical = check_response_size(response)
    stamp = now_iso()
    return await db.change(lambda: answer_work(principal, full_exercise_id, response, skills, stamp, canonical),
                           principal)
