"""Custom skills: matched by name to the skills the reader already sees, else added as their
own custom skills (pending review), with the API's rules (skills.py: name rules, categories,
at most MAX_CUSTOM_SKILLS per reader). Every skill an incoming answer or entry names is
mapped through this merge's result."""

from __future__ import annotations

from app.db.engine import Stmt, changed, guard_query
from app.db.queries import Q
from app.domain.errors import Invalid
from app.domain.portability.incoming import Incoming
from app.domain.portability.merge.context import Context
from app.domain.skill_tags import json_chunks
from app.domain.skills import MAX_CUSTOM_SKILLS, check_category, check_name, name_key

# Which skill of a name wins: the shared list's first (as skills.add_custom prefers it).
_RANK = {"master": 0, "approved": 1, "own": 2}


def merge_custom_skills(ctx: Context, book: Incoming) -> None:
    best: dict[str, tuple[int, str]] = {}
    for row in ctx.known.skills:
        kind = "master" if not row["is_custom"] else "approved" if row["review_status"] == "approved" else "own"
        candidate = (_RANK[kind], row["id"])
        key = name_key(row["name"])
        if key not in best or candidate < best[key]:
            best[key] = candidate
    new: list[list[str | None]] = []
    for skill_id, name, category in book.custom_skills:
        try:
            cleaned = check_name(name)
            wanted_category = check_category(category)
        except Invalid as exc:
            ctx.report.skip("custom_skills", f"{name!r} skipped: {exc.detail}")
            continue
        key = cleaned.casefold()
        if key in best:
            ctx.skill_map[skill_id] = best[key][1]
            ctx.report.add("custom_skills", "unchanged")
            continue
        new_id = ctx.skill_id(skill_id)
        new.append([new_id, cleaned, wanted_category])
        best[key] = (_RANK["own"], new_id)
        ctx.skill_map[skill_id] = new_id
        ctx.usable.add(new_id)
        ctx.report.add("custom_skills", "inserted")
    if not new:
        return
    if ctx.held.custom_skills + len(new) > MAX_CUSTOM_SKILLS:
        raise Invalid(f"Importing this would give you {ctx.held.custom_skills + len(new)} skills of your own; "
                      f"at most {MAX_CUSTOM_SKILLS} are possible. Nothing was imported.", code="import_over_limit")
    for chunk, count in json_chunks(new, ctx.chunk_bytes):
        ctx.writes += [Stmt(Q.import_insert_skills, (ctx.user_id, ctx.stamp, chunk)), changed("skill_taken", count)]
    ctx.writes.append(guard_query("custom_skill_limit", Q.custom_skill_limit_holds,
                            (ctx.user_id, MAX_CUSTOM_SKILLS)))
