"""Completed modules (spec §4.2): a module's row exists only when every required exercise of
it has an answer. The write batch decides that in SQL after its answers (`import_modules`,
like workbook.sql `complete_module`); this predicts the same for the report and warns when
an incoming completion cannot be kept (the module is not complete here). A kept completion
takes the earliest first completion and the latest modification of both sides; a module
the merge completes starts at the incoming completion, else at its latest answer."""

from __future__ import annotations

from app.db.engine import Stmt
from app.db.queries import Q
from app.domain.portability.document import MODULE_ID
from app.domain.portability.incoming import Incoming
from app.domain.portability.merge.context import Context
from app.domain.skill_tags import json_chunks


def merge_modules(ctx: Context, book: Incoming, touched: dict[str, str]) -> None:
    candidates: dict[str, tuple[str | None, str | None]] = dict(book.modules)
    for module_id, at in touched.items():
        first, last = candidates.get(module_id, (None, None))
        candidates[module_id] = (first, max(last or at, at))
    rows: list[list[object]] = []
    for module_id, (first, last) in candidates.items():
        claimed = module_id in book.modules
        found = MODULE_ID.fullmatch(module_id)
        places = ctx.known.modules.get(module_id, [])
        if found is None or not places:
            if claimed:
                ctx.report.skip("modules", f"unknown module {module_id!r} skipped")
            continue
        held = ctx.held.modules.get(module_id)
        answered = [ctx.after[key][1] for key in ((p["part_id"], p["module_id"], p["exercise_id"]) for p in places)
                    if key in ctx.after]
        missing = sum(1 for p in places if p["is_required"]
                      and (p["part_id"], p["module_id"], p["exercise_id"]) not in ctx.after)
        if missing or not answered:
            if held is not None:
                ctx.report.add("modules", "unchanged")
            elif claimed:
                ctx.report.skip("modules", f"{module_id} is not complete here ({missing} required exercise(s) "
                                           "without an answer); its completion was not recorded")
            continue
        latest = max(answered)
        new_first = first or latest
        new_last = max(last or latest, new_first)
        if held is None:
            ctx.report.add("modules", "inserted")
        elif new_first < held[0] or new_last > held[1]:
            ctx.report.add("modules", "updated")
        else:
            ctx.report.add("modules", "unchanged")
            continue
        rows.append([found.group(1), found.group(2), first, last])
    for chunk, _ in json_chunks(rows, ctx.chunk_bytes):
        ctx.writes.append(Stmt(Q.import_modules, (ctx.user_id, chunk)))
