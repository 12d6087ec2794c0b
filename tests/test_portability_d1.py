"""Import and export on the d1 engine (marker d1): the same merge as on SQLite, as D1 takes it:
one read batch, then one atomic write batch whose guard statements (`answers_insertable`,
`tools_insertable`) stand in front of plain inserts."""

from __future__ import annotations

from typing import Any

import pytest

from app.db.d1_engine import D1Engine
from app.db.engine import GuardFailed, Stmt, Write
from app.domain import keys, portability, seeding, sessions
from app.domain.portability.importing import open_upload
from app.domain.portability.merge import merge_work
from app.domain.sessions import ServerKeys
from app.timeutil import now_iso
from tests.conftest import SMALL_SEED
from tests.d1util import RoundTrips

pytestmark = [pytest.mark.d1, pytest.mark.anyio]

SERVER = ServerKeys.derive(b"d" * 32, argon2=keys.Argon2Params.FAST)


def document(tag: str) -> dict[str, Any]:
    exercises = {f"1.1.{n}.v1": {"id": f"{tag}-a{n}", "response_json": {"text": f"{tag} answer {n}"},
                                 "responded_at": "2026-01-01T10:00:00.000Z", "skills": []} for n in (1, 2)}
    tools = [{"id": f"{tag}-t{n}", "tool_type": "list-builder", "origin": "standalone",
              "content_json": {"title": f"{tag} list {n}", "items": ["a", "b"]},
              "created_at": "2026-01-02T10:00:00.000Z", "updated_at": "2026-01-02T10:00:00.000Z", "skills": []}
             for n in range(3)]
    return {"version": "1.1", "exported_at": "2026-06-01T00:00:00.000Z", "encrypted": False, "settings": None,
            "competency_scores": [], "custom_skills": [], "tool_instances": tools,
            "modules": {"1.1": {"first_completed_at": None, "last_modified_at": None, "exercises": exercises}}}


async def test_an_import_is_one_read_and_one_write_and_a_second_changes_nothing(
        d1_engine: D1Engine, d1_round_trips: RoundTrips) -> None:
    await seeding.seed_on(d1_engine, directory=SMALL_SEED)
    reader = (await sessions.start_anonymous(d1_engine, SERVER))[0]
    d1_round_trips.clear()
    first = await portability.import_document(d1_engine, reader, document("x"), password=None, dry_run=False)
    assert d1_round_trips.modes == ["read", "write"]
    assert first.counts.exercises.inserted == 2 and first.counts.tool_instances.inserted == 3
    again = await portability.import_document(d1_engine, reader, document("x"), password=None, dry_run=False)
    assert again.counts.exercises.unchanged == 2 and again.counts.tool_instances.unchanged == 3
    exported = await portability.export(d1_engine, SERVER, reader, password=None)
    answers = exported.document.modules["1.1"].exercises
    assert {k: v.response_json for k, v in answers.items()} == {
        "1.1.1.v1": {"text": "x answer 1"}, "1.1.2.v1": {"text": "x answer 2"}}
    assert sorted(t.content_json["title"] for t in exported.document.tool_instances) == [  # type: ignore[index]
        "x list 0", "x list 1", "x list 2"]


async def test_a_row_taken_between_the_read_and_the_write_fails_the_guard_and_writes_nothing(
        d1_engine: D1Engine) -> None:
    """Another reader's import takes the file's ids after this merge read them free: the write
    batch's `answers_insertable` guard stops it whole on D1, as on SQLite."""
    await seeding.seed_on(d1_engine, directory=SMALL_SEED)
    ann = (await sessions.start_anonymous(d1_engine, SERVER))[0]
    bob = (await sessions.start_anonymous(d1_engine, SERVER))[0]
    book = await open_upload(document("y"), None)
    work = merge_work(bob.user_id, bob.dek, now_iso(), book, dry_run=False)
    read = next(work)
    write = work.send(await d1_engine.batch(read.statements, write=False))
    assert isinstance(write, Write)
    await portability.import_document(d1_engine, ann, document("y"), password=None, dry_run=False)
    with pytest.raises(GuardFailed) as failed:
        await d1_engine.batch(write.statements, write=True)
    assert failed.value.name == "answer_changed"
    (count,) = await d1_engine.batch([Stmt("SELECT count(*) FROM tool_instances WHERE user_id = ?", (bob.user_id,))],
                                     write=False)
    assert count.value() == 0
