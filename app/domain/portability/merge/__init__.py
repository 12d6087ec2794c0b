"""The merge: an incoming workbook folded into a reader's, as one unit of work.

One read batch (what the reader holds, what this installation knows, which of the incoming
ids are taken by anyone, and, at sign-in, this device's anonymous workbook), the decision in
Python (every check, every seal and keyed hash, kind by kind over one `Context`), then one
atomic write batch whose statements guard what was decided on: rows are written only while
unchanged since the read, new rows only while their id is free in both tables and their
place (or content) is still empty, limits hold after the merge, and every tag statement
names its owner. A guard that fails runs the whole work again on fresh reads; the same
incoming workbook twice changes nothing the second time. A dry run stops after the
decision. Kinds are merged in this order (skills first: every tag goes through their map;
answers before tool entries and modules, which depend on them).
"""

from __future__ import annotations

from app.db.engine import ConstraintFailed, GuardFailed, Read, Stmt, Work, Write, guard
from app.db.queries import Q
from app.domain import keys
from app.domain.portability.incoming import Incoming, from_rows, workbook_reads
from app.domain.portability.merge.answers import merge_answers
from app.domain.portability.merge.context import READS, Context, reads
from app.domain.portability.merge.modules import merge_modules
from app.domain.portability.merge.scores import merge_scores
from app.domain.portability.merge.settings import merge_settings
from app.domain.portability.merge.skills import merge_custom_skills
from app.domain.portability.merge.tools import merge_tools
from app.domain.portability.report import ImportReport
from app.domain.skill_tags import tag_statements_many

__all__ = ["merge_work"]


def _source_reads(user_id: str) -> list[Stmt]:
    """This device's anonymous workbook, read in the same batch, and its fingerprint."""
    return [*workbook_reads(user_id), Stmt(Q.workbook_fingerprint, (user_id,))]


def merge_work(user_id: str, dek: keys.DataKey, stamp: str, book: Incoming | None, *, dry_run: bool,
               source: tuple[str, keys.DataKey] | None = None) -> Work[ImportReport]:
    """Merge `book` (or, with `source`, the anonymous workbook of that user id and key, which
    the write batch then removes) into reader `user_id`'s workbook."""
    statements = reads(user_id, book)
    if source is not None:
        statements += _source_reads(source[0])
    results = yield Read(*statements)
    proposals = book  # whose row ids the read checked: a file's, never the anonymous workbook's
    removal: list[Stmt] = []
    held_still: Stmt | None = None
    if source is not None:
        settings, scores, modules, answers, tools, tags, skills, fingerprint = results[READS:]
        book = from_rows(source[1], stamp, settings=settings.one(), scores=scores.rows, modules=modules.rows,
                         answers=answers.rows, tools=tools.rows, tags=tags.rows, custom_skills=skills.rows)
        # The anonymous workbook goes with the merge, only as it was read: an answer saved on
        # the phone meanwhile makes the batch fail and the merge run again.
        removal = [Stmt(Q.delete_user_skill_tags, (source[0],)), Stmt(Q.delete_user, (source[0],))]
        held_still = guard("workbook_changed", f"({Q.workbook_fingerprint.rstrip(';')}) = ?2",
                           (source[0], fingerprint.value()))
    assert book is not None
    ctx = Context.build(user_id, dek, stamp, dry_run, results, proposals)
    merge_custom_skills(ctx, book)
    merge_settings(ctx, book)
    merge_scores(ctx, book)
    touched = merge_answers(ctx, book)
    merge_tools(ctx, book)
    if ctx.tags or ctx.retag:
        ctx.writes += tag_statements_many(user_id, ctx.tags, stamp, replace=ctx.retag, chunk_bytes=ctx.chunk_bytes)
    merge_modules(ctx, book, touched)
    report = ctx.report.build(dry_run)
    if dry_run or not (ctx.writes or removal):
        return report
    writes = [*ctx.writes, Stmt(Q.update_workbook_complete, (stamp, user_id))] if ctx.writes else []
    if held_still is not None:
        writes = [held_still, *writes, *removal]
    try:
        yield Write(*writes)
    except ConstraintFailed:
        # A row, skill or tool the decision relied on changed meanwhile (a unique id taken in
        # the same instant): decide again on fresh reads.
        raise GuardFailed("constraint") from None
    return report
