"""Competency scores: per competency, the newer assessment wins; unknown competencies are
skipped with a warning."""

from __future__ import annotations

import uuid

from app.db.engine import Stmt, changed
from app.db.queries import Q
from app.domain.portability.incoming import Incoming
from app.domain.portability.merge.context import Context
from app.domain.skill_tags import json_chunks


def merge_scores(ctx: Context, book: Incoming) -> None:
    inserts: list[list[object]] = []
    updates: list[list[object]] = []
    seen: set[str] = set()
    for competency_id, score, assessed_at in sorted(book.scores, key=lambda s: s[2], reverse=True):
        if competency_id not in ctx.known.competencies:
            ctx.report.skip("competency_scores", f"unknown competency {competency_id!r} skipped")
            continue
        held = ctx.held.scores.get(competency_id)
        if competency_id in seen or (held is not None and held["assessed_at"] >= assessed_at):
            ctx.report.add("competency_scores", "unchanged")
            continue
        seen.add(competency_id)
        if held is None:
            inserts.append([str(uuid.uuid4()), competency_id, score, assessed_at])
            ctx.report.add("competency_scores", "inserted")
        else:
            updates.append([competency_id, score, assessed_at, held["assessed_at"]])
            ctx.report.add("competency_scores", "updated")
    for chunk, count in json_chunks(inserts, ctx.chunk_bytes):
        ctx.writes += [Stmt(Q.import_insert_scores, (ctx.user_id, chunk)), changed("score_changed", count)]
    for chunk, count in json_chunks(updates, ctx.chunk_bytes):
        ctx.writes += [Stmt(Q.import_update_scores, (ctx.user_id, chunk)), changed("score_changed", count)]
