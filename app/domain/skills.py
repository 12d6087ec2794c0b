"""Skills: searching the list a reader may tag, adding custom skills, and their review.

One rule decides which skills a reader sees, the same rule tagging uses (skill_tags.py,
`usable_skills`): the master list, custom skills an editor approved (they have joined the
shared list), and the reader's own custom skills whatever their review status. Another
reader's pending or rejected skill is never shown: its name is that reader's writing.

- Search matches the name as a substring, ignoring the case of ASCII letters (SQLite's
  `lower`), optionally within one category, sorted by name, at most SEARCH_LIMIT results.
  The reader's text is taken literally: `%` and `_` are plain characters. The SQL of
  `search_skills` defines it; the service answers from an index in memory kept in step with
  the table by a marker read with every search (skill_index.py).
- Adding a skill first looks for the same name among the skills the reader sees (ignoring
  case and extra whitespace): that skill comes back instead of a duplicate, the master
  list's first. Otherwise a custom skill is created, pending review. A reader may hold at
  most MAX_CUSTOM_SKILLS custom skills.
- Review (`dreamtree skills review`): approving puts a pending custom skill on the shared
  list (refused when the shared list already has that name); rejecting keeps it out. Only a
  pending skill is decided: one another editor decided meanwhile is refused, never
  overwritten. A rejected skill stays usable by the reader who wrote it: nothing a reader
  wrote is lost.
Each request is one unit of work (app/db/engine.py). Names are compared in Python (Unicode
case folding, which SQL cannot do), so the write batches guard what the decision read: adding
inserts only while the reader is under the limit and sees no skill they did not see when
deciding; a review applies only to skills still pending, and an approval only while the
shared list holds what was read.
"""

from __future__ import annotations

import json
import unicodedata
import uuid
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, cast, get_args

import msgspec

from app import timeutil
from app.db.engine import Engine, GuardFailed, Read, Row, Stmt, Work, Write, changed, guard_query
from app.db.queries import Q
from app.domain import skill_index
from app.domain.errors import Conflict, Invalid, NotFound
from app.domain.sessions import Principal

SkillCategory = Literal["transferable", "self_management", "knowledge"]
CATEGORIES: tuple[str, ...] = get_args(SkillCategory)
ReviewStatus = Literal["pending", "approved", "rejected"]

MAX_NAME_LENGTH = 80
MAX_QUERY_LENGTH = 80
SEARCH_LIMIT = 100  # the largest master-list category (62 today) fits in one answer
MAX_CUSTOM_SKILLS = 200

# The master list first, then the shared custom skills, then the reader's own.
_PREFERENCE = {"master": 0, "approved": 1, "own": 2}


class Skill(msgspec.Struct, frozen=True):
    """A skill as the API shows it; never who wrote a custom skill. `review_status` is null
    on the master list."""

    id: str
    name: str
    category: SkillCategory | None
    is_custom: bool
    review_status: ReviewStatus | None


def clean_name(text: str) -> str:
    """Trimmed, every run of whitespace (newlines included) one space: how a name is stored."""
    return " ".join(text.split())


def name_key(text: str) -> str:
    """What makes two names the same skill: the cleaned name, case folded."""
    return clean_name(text).casefold()


def skill_out(row: Row) -> Skill:
    return Skill(row["id"], row["name"], row["category"], bool(row["is_custom"]), row["review_status"])


def check_category(category: str | None) -> SkillCategory | None:
    if category is None:
        return None
    if category not in CATEGORIES:
        raise Invalid(f"Unknown skill category {category!r}; use one of {', '.join(CATEGORIES)}.",
                      code="unknown_skill_category")
    return cast(SkillCategory, category)



# --- search ----------------------------------------------------------------------------------


def search_work(principal: Principal, text: str, category: SkillCategory | None,
                holder: skill_index.Holder) -> Work[list[Skill]]:
    """One read batch: the table's marker and the rows since the index's newest, beside the
    session; a second one (the whole table) only when the index must be rebuilt."""
    index = holder.index
    since = index.marker.last_rowid if index is not None else 0
    marker, fresh = yield Read(Stmt(Q.skills_marker), Stmt(Q.skills_from_rowid, (since, skill_index.FRESH_ROWS)))
    index = skill_index.brought_up_to_date(index, skill_index.marker_of(marker.rows[0]), fresh.rows)
    if index is None:
        marker, every = yield Read(Stmt(Q.skills_marker), Stmt(Q.skills_for_index))
        index = skill_index.SkillIndex.build(skill_index.marker_of(marker.rows[0]), every.rows)
        holder.builds += 1
    holder.index = index
    found = index.search(principal.user_id, text, category, SEARCH_LIMIT)
    return [Skill(e.id, e.name, cast(SkillCategory | None, e.category), e.is_custom, cast(ReviewStatus | None, e.review_status))
            for e in found]


def sql_search_work(principal: Principal, text: str, category: SkillCategory | None) -> Work[list[Skill]]:
    """The same search by the SQL that defines it, scanning the table (the tests and the
    benchmark compare the index with it)."""
    if category is None:
        statement = Stmt(Q.search_skills, (principal.user_id, text, SEARCH_LIMIT))
    else:
        statement = Stmt(Q.search_skills_in_category, (principal.user_id, text, category, SEARCH_LIMIT))
    (rows,) = yield Read(statement)
    return [skill_out(r) for r in rows.rows]


_indexes: weakref.WeakKeyDictionary[Engine, skill_index.Holder] = weakref.WeakKeyDictionary()


def index_of(db: Engine) -> skill_index.Holder:
    """The search index of this engine's database, in this process."""
    holder = _indexes.get(db)
    if holder is None:
        holder = _indexes[db] = skill_index.Holder()
    return holder


async def search(db: Engine, principal: Principal, q: str | None = None, category: str | None = None) -> list[Skill]:
    """The skills this reader may tag whose name contains q, by name (at most SEARCH_LIMIT)."""
    text = clean_name(q or "")
    if len(text) > MAX_QUERY_LENGTH:
        raise Invalid(f"Search for at most {MAX_QUERY_LENGTH} characters.", code="query_too_long")
    wanted = check_category(category or None)
    holder = index_of(db)
    return await db.query(lambda: search_work(principal, text, wanted, holder), principal)


# --- adding a custom skill -------------------------------------------------------------------


@dataclass(frozen=True)
class Added:
    skill: Skill
    created: bool  # False: a skill of that name was already there and is returned instead


def check_name(name: str) -> str:
    cleaned = clean_name(name)
    if not 1 <= len(cleaned) <= MAX_NAME_LENGTH:
        raise Invalid(f"A skill name has 1 to {MAX_NAME_LENGTH} characters.", code="invalid_skill_name")
    if any(unicodedata.category(ch) == "Cc" for ch in cleaned):
        raise Invalid("A skill name cannot contain control characters.", code="invalid_skill_name")
    return cleaned


def _kind(row: Row) -> str:
    if not row["is_custom"]:
        return "master"
    return "approved" if row["review_status"] == "approved" else "own"


def _too_many() -> Conflict:
    return Conflict(f"You already have {MAX_CUSTOM_SKILLS} skills of your own; use one of those.",
                    code="too_many_custom_skills")


def add_work(principal: Principal, cleaned: str, category: SkillCategory | None, stamp: str) -> Work[Added]:
    """Reads every skill the reader sees; returns the one of the same name, or inserts a new
    one. The insert holds itself to the limit (`custom_skill_limit`: 409 at once), and the
    batch is dropped when the reader now sees a skill they did not see here (`skills_changed`:
    another tab added one, an editor approved one, a re-seed added one), so the work runs
    again and finds it instead of adding a second skill of the same name."""
    user = principal.user_id
    (visible,) = yield Read(Stmt(Q.visible_skills, (user,)))
    key = cleaned.casefold()
    same = [r for r in visible.rows if name_key(r["name"]) == key]
    if same:
        best = min(same, key=lambda r: (_PREFERENCE[_kind(r)], r["id"]))
        return Added(skill_out(best), False)
    if sum(1 for r in visible.rows if r["is_custom"] and r["mine"]) >= MAX_CUSTOM_SKILLS:
        raise _too_many()
    skill_id = str(uuid.uuid4())
    seen = json.dumps([r["id"] for r in visible.rows])
    try:
        yield Write(
            Stmt(Q.insert_custom_skill_within_limit, (skill_id, cleaned, category, user, stamp, MAX_CUSTOM_SKILLS)),
            changed("custom_skill_limit"),
            guard_query("skills_changed", Q.sees_only_skills_seen, (user, seen, skill_id)),
        )
    except GuardFailed as failed:
        if failed.name == "custom_skill_limit":
            raise _too_many() from None
        raise
    return Added(Skill(skill_id, cleaned, category, True, "pending"), True)


async def add_custom(db: Engine, principal: Principal, name: str, category: str | None = None) -> Added:
    """The skill of that name the reader already sees, or a new custom skill pending review."""
    cleaned = check_name(name)
    wanted_category = check_category(category)
    stamp = timeutil.now_iso()
    return await db.change(lambda: add_work(principal, cleaned, wanted_category, stamp), principal)


# --- review (the editors' CLI) ---------------------------------------------------------------


@dataclass(frozen=True)
class PendingSkill:
    id: str
    name: str
    category: str | None
    created_at: str


@dataclass(frozen=True)
class Decision:
    id: str
    name: str
    previous: str | None
    review_status: str


def pending_work() -> Work[list[PendingSkill]]:
    (rows,) = yield Read(Stmt(Q.pending_custom_skills))
    return [PendingSkill(r["id"], r["name"], r["category"], r["created_at"]) for r in rows.rows]


async def pending_skills(db: Engine) -> list[PendingSkill]:
    """Custom skills waiting for an editor, oldest first; without their authors."""
    return await db.query(pending_work, None)


def review_work(wanted: Sequence[tuple[str, str]]) -> Work[list[Decision]]:
    """Reads the skills named and the shared list; decides; writes every decision in one
    statement that changes only skills still pending (`skill_decided_meanwhile` when another
    editor decided one first: the work runs again and refuses it), approvals only while the
    shared list holds no skill this review did not read (`shared_list_changed`)."""
    ids = json.dumps([skill_id for skill_id, _ in wanted])
    found, shared = yield Read(Stmt(Q.custom_skills_among, (ids,)), Stmt(Q.shared_skills))
    rows = {r["id"]: r for r in found.rows}
    shared_names = {name_key(r["name"]): r["id"] for r in shared.rows}
    decisions = []
    for skill_id, status in wanted:
        row = rows.get(skill_id)
        if row is None:
            raise NotFound(f"no custom skill with id {skill_id}", code="unknown_skill")
        if row["review_status"] != "pending":
            raise Conflict(f"{skill_id} ({row['name']!r}) is not pending: it was {row['review_status']} already",
                           code="skill_not_pending")
        key = name_key(row["name"])
        if status == "approved":
            if shared_names.get(key, skill_id) != skill_id:
                raise Conflict(f"{skill_id} ({row['name']!r}): the shared list already has that name "
                               f"({shared_names[key]}); reject it instead", code="skill_already_shared")
            shared_names[key] = skill_id
        decisions.append(Decision(skill_id, row["name"], row["review_status"], status))
    approved = [skill_id for skill_id, status in wanted if status == "approved"]
    statements = []
    if approved:
        seen = json.dumps([r["id"] for r in shared.rows])
        statements.append(guard_query("shared_list_changed", Q.shared_list_is, (seen,)))
    statements += [Stmt(Q.decide_pending_skills, (ids, json.dumps(approved))),
                   changed("skill_decided_meanwhile", len(wanted))]
    yield Write(statements)
    return decisions


async def review(db: Engine, *, approve: Sequence[str] = (), reject: Sequence[str] = ()) -> list[Decision]:
    """Approve and reject pending custom skills in one atomic batch: all of it, or (on any
    error) none.

    Unknown ids (master-list ids included) raise NotFound; a skill that is no longer pending,
    or approving a name the shared list already has, raises Conflict, so the shared list
    never shows the same skill twice and no editor's decision is overwritten by another's.
    """
    both = sorted(set(approve) & set(reject))
    if both:
        raise Invalid(f"Cannot both approve and reject {', '.join(both)}.", code="conflicting_review")
    wanted = [(i, "approved") for i in dict.fromkeys(approve)] + [(i, "rejected") for i in dict.fromkeys(reject)]
    if not wanted:
        return []
    return await db.change(lambda: review_work(wanted), None)


__all__ = [
    "CATEGORIES",
    "MAX_CUSTOM_SKILLS",
    "MAX_NAME_LENGTH",
    "MAX_QUERY_LENGTH",
    "SEARCH_LIMIT",
    "Added",
    "Decision",
    "PendingSkill",
    "ReviewStatus",
    "Skill",
    "SkillCategory",
    "add_custom",
    "add_work",
    "check_name",
    "clean_name",
    "name_key",
    "pending_skills",
    "review",
    "review_work",
    "index_of",
    "search",
    "search_work",
    "sql_search_work",
]
