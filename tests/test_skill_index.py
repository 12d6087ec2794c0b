"""The skill search index answers exactly what the SQL search answers, and follows the table.

Every comparison runs the index (`search_work`) and the SQL scan (`sql_search_work`) on the
same engine and the same data: random names that differ only in case, in non-ASCII letters,
holding `%` or `_`; every review status; several readers; with and without a category. The
data then changes the ways the service and other processes change it (adds, imports, review
decisions, new master skills, deletes, a re-seed's rename), and the two must still agree.
"""

from __future__ import annotations

import json
import random
import sqlite3
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import anyio
import pytest
from click.testing import CliRunner

from app.cli import main
from app.db.connection import Database, connect_sync
from app.db.queries import Q
from app.domain import keys, skill_index
from app.domain.sessions import Principal
from app.domain.skills import CATEGORIES, SkillCategory, index_of, search_work, sql_search_work
from tests.helpers import Reader

STAMP = "2026-01-01T00:00:00.000Z"
READERS = ["ann", "ben", "cat", "dan"]
LETTERS = "aAbBcCéÉ%_ -xY"


def principal(user: str) -> Principal:
    return Principal(user, f"sid-{user}", keys.new_data_key(), True)


class Both:
    """One engine on the database; searches by the index and by the SQL, compared."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = Database(path)

    def search(self, user: str, text: str, category: SkillCategory | None) -> tuple[list[Any], list[Any]]:
        holder = index_of(self.db)
        p = principal(user)

        async def both() -> tuple[list[Any], list[Any]]:
            by_index = await self.db.query(lambda: search_work(p, text, category, holder), None)
            by_sql = await self.db.query(lambda: sql_search_work(p, text, category), None)
            return by_index, by_sql

        return self.run(both)

    def run(self, fn: Callable[[], Any]) -> Any:
        return self.portal.call(fn)

    def __enter__(self) -> Both:
        self._cm = anyio.from_thread.start_blocking_portal()
        self.portal = self._cm.__enter__()
        self.portal.call(self.db.open)
        return self

    def __exit__(self, *exc: object) -> None:
        self.portal.call(self.db.close)
        self._cm.__exit__(None, None, None)


@pytest.fixture
def both(db_path: Path) -> Iterator[Both]:
    conn = connect_sync(db_path)
    with conn:
        for user in READERS:
            conn.execute("INSERT INTO users (id, created_at, updated_at) VALUES (?, ?, ?)", (user, STAMP, STAMP))
    conn.close()
    with Both(db_path) as b:
        yield b


def random_name(rng: random.Random) -> str:
    return "".join(rng.choice(LETTERS) for _ in range(rng.randint(1, 8))).strip() or "x"


def insert_random(conn: sqlite3.Connection, rng: random.Random, count: int, *, master_share: float = 0.1,
                  statuses: tuple[str, ...] = ("pending", "approved", "rejected")) -> None:
    rows = []
    for _ in range(count):
        category = rng.choice([*CATEGORIES, None])
        if rng.random() < master_share:
            rows.append((f"m-{uuid.uuid4()}", random_name(rng), category, 0, None, None))
        else:
            rows.append((str(uuid.uuid4()), random_name(rng), category, 1, rng.choice([*READERS, None]),
                         rng.choice(statuses)))
    with conn:
        conn.executemany("INSERT INTO skills (id, name, category, is_custom, created_by, review_status, created_at)"
                         " VALUES (?, ?, ?, ?, ?, ?, ?)", [(*r, STAMP) for r in rows])


def queries(conn: sqlite3.Connection, rng: random.Random, count: int) -> list[tuple[str, str, SkillCategory | None]]:
    names = [r[0] for r in conn.execute("SELECT name FROM skills")] or ["x"]
    out: list[tuple[str, str, SkillCategory | None]] = []
    for _ in range(count):
        name = rng.choice(names)
        start = rng.randrange(len(name))
        text = name[start:start + rng.randint(1, 4)]
        text = "".join(ch.swapcase() if rng.random() < 0.5 else ch for ch in text)
        text = rng.choice([text, text, "", rng.choice(LETTERS), "nothing like it"])
        out.append((rng.choice([*READERS, "stranger"]), " ".join(text.split()), rng.choice([None, *CATEGORIES])))
    return out


def decide(conn: sqlite3.Connection, approve: Sequence[str] = (), reject: Sequence[str] = ()) -> None:
    """An editor's review in another process: the review's own statement."""
    with conn:
        conn.execute(Q.decide_pending_skills, (json.dumps([*approve, *reject]), json.dumps(list(approve))))


def agree(both: Both, conn: sqlite3.Connection, rng: random.Random, count: int = 40) -> None:
    for user, text, category in queries(conn, rng, count):
        by_index, by_sql = both.search(user, text, category)
        assert by_index == by_sql, (user, text, category)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_index_answers_what_the_sql_answers_on_random_data(both: Both, seed: int) -> None:
    rng = random.Random(seed)
    conn = connect_sync(both.path, strict=False)
    try:
        insert_random(conn, rng, 900)  # over FRESH_ROWS: built from a read of the whole table
        agree(both, conn, rng, 150)
        # A search limited to SEARCH_LIMIT from many matches: the empty query, a common letter.
        for user in READERS:
            for text in ("", "a", "%", "_"):
                by_index, by_sql = both.search(user, text, None)
                assert by_index == by_sql
    finally:
        conn.close()


def test_the_index_follows_every_kind_of_change(both: Both, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(7)
    conn = connect_sync(both.path, strict=False)
    holder = index_of(both.db)
    try:
        insert_random(conn, rng, 60)  # a small table: the first batch alone builds the index
        agree(both, conn, rng)
        assert holder.builds == 0 and holder.index is not None

        insert_random(conn, rng, 30, master_share=0, statuses=("pending",))  # readers adding, imports
        agree(both, conn, rng)
        assert holder.builds == 0, "new pending skills join the index without a rebuild"

        pending = [r[0] for r in conn.execute("SELECT id FROM skills WHERE review_status = 'pending' "
                                              "AND created_by IS NOT NULL ORDER BY rowid DESC LIMIT 6")]
        decide(conn, approve=pending[:3], reject=pending[3:])  # an editor's review, in another process
        agree(both, conn, rng)
        for skill_id, name, category in conn.execute("SELECT id, name, category FROM skills WHERE id IN "
                                                     "(SELECT value FROM json_each(?))", (json.dumps(pending),)):
            for user in ("stranger", *READERS):
                for wanted in (None, category):
                    by_index, by_sql = both.search(user, name, wanted)
                    assert by_index == by_sql, (skill_id, user)
        assert holder.builds == 0, "decided skills move within the index without a rebuild"
        insert_random(conn, rng, 3, master_share=0, statuses=("pending",))
        newest = conn.execute("SELECT id FROM skills WHERE created_by IS NOT NULL ORDER BY rowid DESC LIMIT 1").fetchone()[0]
        agree(both, conn, rng)
        decide(conn, approve=[newest])  # the index's newest row decided: it moves to a new rowid
        insert_random(conn, rng, 2, master_share=0, statuses=("pending",))
        agree(both, conn, rng)
        assert holder.builds == 0
        orphan = "orphan-pending"
        with conn:  # a pending skill whose author deleted their account, then approved
            conn.execute("INSERT INTO skills (id, name, is_custom, created_by, review_status, created_at)"
                         " VALUES (?, 'Orphan', 1, NULL, 'pending', ?)", (orphan, STAMP))
        agree(both, conn, rng)
        decide(conn, approve=[orphan])
        agree(both, conn, rng)
        assert holder.builds == 1
        assert both.search("ben", "orphan", None)[0] != []

        insert_random(conn, rng, 5, master_share=1)  # a re-seed adding master skills
        agree(both, conn, rng)
        assert holder.builds == 2

        with conn:  # the newest row deleted, and its rowid taken again by the next insert
            conn.execute("DELETE FROM skills WHERE rowid = (SELECT max(rowid) FROM skills)")
        insert_random(conn, rng, 1, master_share=0, statuses=("pending",))
        agree(both, conn, rng)
        assert holder.builds == 3

        with conn:  # a re-seed renaming a master skill, an approval by hand: neither moves the marker...
            conn.execute("UPDATE skills SET name = 'Renamed by the seed' WHERE id = "
                         "(SELECT id FROM skills WHERE is_custom = 0 LIMIT 1)")
            conn.execute("UPDATE skills SET name = 'Approved by hand', review_status = 'approved' WHERE id = "
                         "(SELECT id FROM skills WHERE review_status = 'pending' AND created_by = 'ann' LIMIT 1)")
        for text in ("renamed by", "by hand"):
            by_index, by_sql = both.search("ben", text, None)
            assert by_sql and by_index == []
        # ...and both are seen once the index is older than REBUILD_AFTER.
        monkeypatch.setattr(skill_index, "REBUILD_AFTER", -1.0)
        agree(both, conn, rng)
        for text in ("renamed by", "by hand"):
            by_index, by_sql = both.search("ben", text, None)
            assert by_index == by_sql != []
    finally:
        conn.close()


def test_another_process_sees_a_change_on_its_next_search(both: Both) -> None:
    rng = random.Random(11)
    conn = connect_sync(both.path, strict=False)
    try:
        insert_random(conn, rng, 700)
        agree(both, conn, rng, 10)
        with Both(both.path) as other:  # a second process on the same database
            agree(other, conn, rng, 10)
            with conn:
                conn.execute("INSERT INTO skills (id, name, category, is_custom, created_by, review_status, created_at)"
                             " VALUES ('ann-new', 'Zymurgy', NULL, 1, 'ann', 'pending', ?)", (STAMP,))
            for engine in (both, other):
                assert [s.id for s in engine.search("ann", "zymurgy", None)[0]] == ["ann-new"]
                assert engine.search("ben", "zymurgy", None)[0] == []
            decide(conn, approve=["ann-new"])
            for engine in (both, other):
                assert [s.review_status for s in engine.search("ben", "zymurgy", None)[0]] == ["approved"]
    finally:
        conn.close()


def test_two_readers_through_the_api(seeded: Path, new_reader: Callable[[], Reader]) -> None:
    ann, ben = new_reader(), new_reader()
    ann.start()
    ben.start()
    created = ann.post("/api/skills", {"name": "Glassblowing", "category": "knowledge"}).json()
    for _ in range(2):  # the second search from the index as it stands
        assert [s["id"] for s in ann.get("/api/skills", params={"q": "GLASS"}).json()] == [created["id"]]
        assert ben.get("/api/skills", params={"q": "glass"}).json() == []
        assert ben.get("/api/skills", params={"q": "glass", "category": "knowledge"}).json() == []
    result = CliRunner().invoke(main, ["skills", "review", "--db", str(seeded), "--approve", created["id"]])
    assert result.exit_code == 0, result.output  # an editor, from another process
    assert ben.get("/api/skills", params={"q": "glass"}).json() == [{**created, "review_status": "approved"}]


# --- on D1: the same answers, and a second process on the same database ------------------------


@pytest.mark.d1
@pytest.mark.anyio
async def test_on_d1_the_index_answers_what_the_sql_answers_and_follows_another_process(
        d1_engine: Any, d1_worker: Any) -> None:
    from app.db.d1_engine import D1Engine
    from app.db.engine import Stmt

    rng = random.Random(5)
    await d1_engine.batch([Stmt("INSERT INTO users (id, created_at, updated_at) VALUES (?, ?, ?)", (u, STAMP, STAMP))
                           for u in READERS], write=True)
    names = [random_name(rng) for _ in range(120)]
    rows = []
    for name in names:
        custom = rng.random() > 0.2
        rows.append((str(uuid.uuid4()), name, rng.choice([*CATEGORIES, None]), int(custom),
                     rng.choice(READERS) if custom else None,
                     rng.choice(["pending", "approved", "rejected"]) if custom else None))
    await d1_engine.batch([Stmt("INSERT INTO skills (id, name, category, is_custom, created_by, review_status, "
                                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)", (*r, STAMP)) for r in rows], write=True)
    other = D1Engine(d1_worker.url, d1_worker.token, timeout=10.0)  # another process on the same D1
    try:
        for engine in (d1_engine, other):
            holder = index_of(engine)
            for _ in range(25):
                user, text = rng.choice([*READERS, "stranger"]), rng.choice(["", *names, "a", "%"])[:3]
                category = rng.choice([None, *CATEGORIES])
                p = principal(user)
                by_index = await engine.query(lambda p=p, t=text, c=category, h=holder: search_work(p, t, c, h), None)
                by_sql = await engine.query(lambda p=p, t=text, c=category: sql_search_work(p, t, c), None)
                assert by_index == by_sql, (user, text, category)
        await d1_engine.batch([Stmt("INSERT INTO skills (id, name, category, is_custom, created_by, review_status, "
                                    "created_at) VALUES ('ann-new', 'Zymurgy', NULL, 1, 'ann', 'pending', ?)",
                                    (STAMP,))], write=True)
        ann, ben = principal("ann"), principal("ben")
        assert [s.id for s in await other.query(lambda: search_work(ann, "zym", None, index_of(other)), None)] == ["ann-new"]
        assert await other.query(lambda: search_work(ben, "zym", None, index_of(other)), None) == []
        await d1_engine.batch([Stmt(Q.decide_pending_skills, ('["ann-new"]', '["ann-new"]'))], write=True)
        found = await other.query(lambda: search_work(ben, "zym", None, index_of(other)), None)
        assert [(s.id, s.review_status) for s in found] == [("ann-new", "approved")]
    finally:
        await other.close()


def test_the_marker_and_the_fresh_rows_are_index_searches(conn: sqlite3.Connection) -> None:
    def plan(name: str, params: tuple[Any, ...]) -> str:
        return " | ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + Q[name], params))

    marker = plan("skills_marker", ())
    assert "SCAN skills USING COVERING INDEX" in marker and "SCAN skills |" not in marker + " |"
    assert "USING INTEGER PRIMARY KEY (rowid>?)" in plan("skills_from_rowid", (1, 10))
