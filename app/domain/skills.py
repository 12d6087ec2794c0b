"""Skills: searching the list a reader may tag, adding custom skills, and their review.

One rule decides which skills a reader sees, the same rule tagging uses (skill_tags.py,
`usable_skills`): the master list, custom skills an editor approved (they have joined the
shared list), and the reader's own custom skills whatever their review status. Another
reader's pending or rejected skill is never shown: its name is that reader's writing.

- Search matches the name as a substring, ignoring the case of ASCII letters (SQLite's
  `lower`), optionally within one category, sorted by name, at most SEARCH_LIMIT results.
  The reader's text is taken literally: `%` and `_` are plain characters.
- Adding a skill first looks for the same name among the skills the reader sees (ignoring
  case and extra whitespace): that skill comes back instead of a duplicate, the master
  list's first. Otherwise a custom skill is created, pending review. A reader may hold at
  most MAX_CUSTOM_SKILLS custom skills.
- Review (`dreamtree skills review`): approving puts a custom skill on the shared list
  (refused when the shared list already has that name); rejecting keeps it out. A rejected
  skill stays usable by the reader who wrote it: nothing a reader wrote is lost.
Each request is one database job.
"""

from __future__ import annotations

import sqlite3
import unicodedata
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

from app import timeutil
from app.db.connection import Database, run_in_transaction
from app.db.queries import Q
from app.domain.errors import Conflict, Invalid, NotFound
from app.domain.sessions import Principal

SkillCategory = Literal["transferable", "self_management", "knowledge"]
CATEGORIES: tuple[str, ...] = get_args(SkillCategory)

MAX_NAME_LENGTH = 80
MAX_QUERY_LENGTH = 80
SEARCH_LIMIT = 100  # the largest master-list category (62 today) fits in one answer
MAX_CUSTOM_SKILLS = 200

# The master list first, then the shared custom skills, then the reader's own.
_PREFERENCE = {"master": 0, "approved": 1, "own": 2}


def clean_name(text: str) -> str:
    """Trimmed, every run of whitespace (newlines included) one space: how a name is stored."""
    return " ".join(text.split())


def name_key(text: str) -> str:
    """What makes two names the same skill: the cleaned name, case folded."""
    return clean_name(text).casefold()


def skill_out(row: sqlite3.Row) -> dict[str, Any]:
    """A skill as the API shows it; never who wrote a custom skill."""
    return {"id": row["id"], "name": row["name"], "category": row["category"],
            "is_custom": bool(row["is_custom"]), "review_status": row["review_status"]}


def check_category(category: str | None) -> str | None:
    if category is None:
        return None
    if category not in CATEGORIES:
        raise Invalid(f"Unknown skill category {category!r}; use one of {', '.join(CATEGORIES)}.",
                      code="unknown_skill_category")
    return category


# --- search ----------------------------------------------------------------------------------


async def search(db: Database, principal: Principal, q: str | None = None,
                 category: str | None = None) -> list[dict[str, Any]]:
    """The skills this reader may tag whose name contains q, by name (at most SEARCH_LIMIT)."""
    text = clean_name(q or "")
    if len(text) > MAX_QUERY_LENGTH:
        raise Invalid(f"Search for at most {MAX_QUERY_LENGTH} characters.", code="query_too_long")
    wanted = check_category(category or None)
    params: tuple[object, ...]
    if wanted is None:
        query, params = Q.search_skills, (principal.user_id, text, SEARCH_LIMIT)
    else:
        query, params = Q.search_skills_in_category, (principal.user_id, text, wanted, SEARCH_LIMIT)
    rows = await db.read(lambda c: c.execute(query, params).fetchall())
    return [skill_out(r) for r in rows]


# --- adding a custom skill -------------------------------------------------------------------


@dataclass(frozen=True)
class Added:
    skill: dict[str, Any]
    created: bool  # False: a skill of that name was already there and is returned instead


def check_name(name: str) -> str:
    cleaned = clean_name(name)
    if not 1 <= len(cleaned) <= MAX_NAME_LENGTH:
        raise Invalid(f"A skill name has 1 to {MAX_NAME_LENGTH} characters.", code="invalid_skill_name")
    if any(unicodedata.category(ch) == "Cc" for ch in cleaned):
        raise Invalid("A skill name cannot contain control characters.", code="invalid_skill_name")
    return cleaned


def _kind(row: sqlite3.Row) -> str:
    if not row["is_custom"]:
        return "master"
    return "approved" if row["review_status"] == "approved" else "own"


async def add_custom(db: Database, principal: Principal, name: str, category: str | None = None) -> Added:
    """The skill of that name the reader already sees, or a new custom skill pending review."""
    cleaned = check_name(name)
    wanted_category = check_category(category)
    key = cleaned.casefold()

    def write(conn: sqlite3.Connection) -> Added:
        visible = conn.execute(Q.visible_skills, (principal.user_id,)).fetchall()
        same = [r for r in visible if name_key(r["name"]) == key]
        if same:
            best = min(same, key=lambda r: (_PREFERENCE[_kind(r)], r["id"]))
            return Added(skill_out(best), False)
        if sum(1 for r in visible if r["is_custom"] and r["mine"]) >= MAX_CUSTOM_SKILLS:
            raise Conflict(f"You already have {MAX_CUSTOM_SKILLS} skills of your own; use one of those.",
                           code="too_many_custom_skills")
        skill_id = str(uuid.uuid4())
        conn.execute(Q.insert_custom_skill, (skill_id, cleaned, wanted_category, principal.user_id, timeutil.now_iso()))
        return Added({"id": skill_id, "name": cleaned, "category": wanted_category, "is_custom": True,
                      "review_status": "pending"}, True)

    return await db.write(write)


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


def pending_skills(conn: sqlite3.Connection) -> list[PendingSkill]:
    """Custom skills waiting for an editor, oldest first; without their authors."""
    return [PendingSkill(r["id"], r["name"], r["category"], r["created_at"])
            for r in conn.execute(Q.pending_custom_skills)]


def review(conn: sqlite3.Connection, *, approve: Sequence[str] = (), reject: Sequence[str] = ()) -> list[Decision]:
    """Approve and reject custom skills in one transaction: all of it, or (on any error) none.

    Unknown ids (master-list ids included) raise NotFound; approving a name the shared list
    already has raises Conflict, so the shared list never shows the same skill twice.
    """
    both = sorted(set(approve) & set(reject))
    if both:
        raise Invalid(f"Cannot both approve and reject {', '.join(both)}.", code="conflicting_review")
    wanted = [(i, "approved") for i in dict.fromkeys(approve)] + [(i, "rejected") for i in dict.fromkeys(reject)]

    def write(c: sqlite3.Connection) -> list[Decision]:
        shared = {name_key(r["name"]): r["id"] for r in c.execute(Q.shared_skills)}
        decisions = []
        for skill_id, status in wanted:
            row = c.execute(Q.custom_skill_by_id, (skill_id,)).fetchone()
            if row is None:
                raise NotFound(f"no custom skill with id {skill_id}", code="unknown_skill")
            key = name_key(row["name"])
            if status == "approved" and shared.get(key, skill_id) != skill_id:
                raise Conflict(f"{skill_id} ({row['name']!r}): the shared list already has that name "
                               f"({shared[key]}); reject it instead", code="skill_already_shared")
            if status == "approved":
                shared[key] = skill_id
            elif shared.get(key) == skill_id:
                del shared[key]
            c.execute(Q.set_review_status, (skill_id, status))
            decisions.append(Decision(skill_id, row["name"], row["review_status"], status))
        return decisions

    return run_in_transaction(conn, write, True)


__all__ = [
    "CATEGORIES",
    "MAX_CUSTOM_SKILLS",
    "MAX_NAME_LENGTH",
    "MAX_QUERY_LENGTH",
    "SEARCH_LIMIT",
    "Added",
    "Decision",
    "PendingSkill",
    "SkillCategory",
    "add_custom",
    "check_name",
    "clean_name",
    "name_key",
    "pending_skills",
    "review",
    "search",
]
