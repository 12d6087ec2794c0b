"""Answers: one per reader and place of the workbook; the newer `responded_at` wins.

- An answer at a place this workbook does not have is skipped with a warning.
- An answer to a version that does not exist here is kept as the answer to the place's
  current version, with a warning (the reader's words are never dropped for a version).
- An empty answer to a required exercise (workbook.is_empty, the API's rule) is skipped with
  a warning: it says nothing, and it must never complete a module.
- Equal times and different answers keep the reader's own, with a warning; equal answers
  with other tags take the incoming tags.
- Two incoming answers for one place keep the newer.
Answers the API would refuse (too large, not portable JSON) never get here: the whole file
is refused before (incoming.open_file).
"""

from __future__ import annotations

import msgspec

from app.db.engine import Stmt, changed
from app.db.queries import Q
from app.domain import keys
from app.domain.json_limits import FreeJSON
from app.domain.portability.document import EXERCISE_ID
from app.domain.portability.incoming import ANSWERS, Answer, Incoming
from app.domain.portability.merge.context import Context, guarded_inserts
from app.domain.skill_tags import json_chunks
from app.domain.workbook import is_empty

Place = tuple[str, str, str]


def _same(a: FreeJSON, b: FreeJSON) -> bool:
    """Equal answers: the same JSON text with sorted keys (cheap), else equal once canonical
    (Unicode form, number spelling)."""
    sorted_a, sorted_b = msgspec.json.encode(a, order="sorted"), msgspec.json.encode(b, order="sorted")
    return sorted_a == sorted_b or keys.canonical_json(a) == keys.canonical_json(b)


def _chosen(ctx: Context, book: Incoming) -> dict[Place, tuple[Answer, str, int]]:
    """Per place, the incoming answer to merge, stored under which exercise id and version."""
    chosen: dict[Place, tuple[Answer, str, int]] = {}
    for answer in book.answers:
        found = EXERCISE_ID.fullmatch(answer.full_exercise_id)
        part, module, exercise, number = found.groups() if found else ("", "", "", "0")
        place = (part, module, exercise)
        current = ctx.known.places.get(place)
        if current is None:
            ctx.report.skip("exercises", f"unknown exercise {answer.full_exercise_id!r} skipped")
            continue
        if current["is_required"] and is_empty(answer.response):
            ctx.report.skip("exercises", f"{answer.full_exercise_id}: an empty answer to a required exercise "
                                         "was not kept")
            continue
        full_id, version = answer.full_exercise_id, int(number)
        if full_id not in ctx.known.versions:
            ctx.report.warn("exercises", f"{full_id} does not exist here; the answer was kept as the answer to "
                                         f"{current['full_exercise_id']}")
            full_id, version = current["full_exercise_id"], current["version"]
        earlier = chosen.get(place)
        if earlier is not None:
            older, newer = sorted((earlier, (answer, full_id, version)), key=lambda c: c[0].responded_at)
            ctx.report.skip("exercises", f"{older[0].full_exercise_id}: another answer in the file for the same "
                                         f"exercise is newer ({newer[0].full_exercise_id}); the older was not kept")
            chosen[place] = newer
            continue
        chosen[place] = (answer, full_id, version)
    return chosen


def merge_answers(ctx: Context, book: Incoming) -> dict[str, str]:
    """Plan the answers; returns the modules they touched with the latest time written in each."""
    inserts: list[list[object]] = []
    updates: list[list[object]] = []
    touched: dict[str, str] = {}
    for place, (answer, full_id, version) in _chosen(ctx, book).items():
        skills = ctx.skills_of(answer.skills, f"exercise {answer.full_exercise_id}", "exercises")
        held = ctx.held.answers.get(place)
        if held is not None:
            if held["responded_at"] > answer.responded_at:
                ctx.report.add("exercises", "unchanged")
                continue
            if held["responded_at"] == answer.responded_at:
                mine = keys.open_column(ctx.dek, held["response_json"], table=ANSWERS, row_id=held["id"])
                if not _same(mine, answer.response):
                    ctx.report.warn("exercises", f"{answer.full_exercise_id} differs with the same time; "
                                                 "the answer already here was kept")
                    ctx.report.add("exercises", "unchanged")
                elif set(ctx.held.tags.get(held["id"], [])) == set(skills):
                    ctx.report.add("exercises", "unchanged")
                else:
                    ctx.retag.append(held["id"])
                    ctx.tags[held["id"]] = skills
                    ctx.report.add("exercises", "updated")
                continue
            sealed = ctx.seal(answer.response, ANSWERS, held["id"])
            updates.append([held["id"], version, full_id, sealed, answer.responded_at, held["responded_at"]])
            ctx.retag.append(held["id"])
            ctx.tags[held["id"]] = skills
            ctx.report.add("exercises", "updated")
        else:
            row_id = ctx.row_id(answer.id)
            sealed = ctx.seal(answer.response, ANSWERS, row_id)
            inserts.append([row_id, *place, version, full_id, sealed, answer.responded_at])
            if skills:
                ctx.tags[row_id] = skills
            ctx.report.add("exercises", "inserted")
        ctx.after[place] = (full_id, answer.responded_at)
        module = f"{place[0]}.{place[1]}"
        touched[module] = max(touched.get(module, ""), answer.responded_at)
    ctx.writes += guarded_inserts(ctx.user_id, inserts, lambda row: row[:4], name="answer_changed",
                                  insertable=Q.answers_insertable, insert=Q.import_insert_answers,
                                  limit=ctx.chunk_bytes)
    for chunk, count in json_chunks(updates, ctx.chunk_bytes):
        ctx.writes += [Stmt(Q.import_update_answers, (ctx.user_id, chunk)), changed("answer_changed", count)]
    return touched
