"""Every operator and editor command takes `--engine d1` and runs the same domain functions
through the D1 Worker (marker d1): seed, export, import, users, skills review and check; the
sqlite-only commands (backup, restore, export-d1, import-d1) say so and touch nothing.

No sqlite file is ever needed or created: `--db` only places the server secret's key file,
which the app under test shares with the commands (as DREAMTREE_SECRET would on real hosts).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from click.testing import CliRunner, Result
from litestar.testing import TestClient

from app.cli import main
from app.config import Settings
from app.db.d1_engine import D1Engine
from app.db.engine import Stmt
from app.http.app import create_app
from tests import d1util
from tests.d1util import WorkerProcess
from tests.helpers import PASSWORD, Reader

pytestmark = pytest.mark.d1


@pytest.fixture
def d1(d1_worker: WorkerProcess) -> Iterator[WorkerProcess]:
    """The session's Worker with every row deleted (the migrations ledger kept)."""

    async def empty() -> None:
        assert d1_worker.token is not None
        engine = D1Engine(d1_worker.url, d1_worker.token)
        try:
            await d1util.wipe(engine)
        finally:
            await engine.close()

    anyio.run(empty)
    yield d1_worker


def rows(worker: WorkerProcess, sql: str, *params: object) -> list[dict[str, object]]:
    async def read() -> list[dict[str, object]]:
        assert worker.token is not None
        engine = D1Engine(worker.url, worker.token)
        try:
            (result,) = await engine.batch([Stmt(sql, params)], write=False)
            return [{key: row[key] for key in row.keys()} for row in result.rows]
        finally:
            await engine.close()

    return anyio.run(read)


def dreamtree(worker: WorkerProcess, tmp_path: Path, *args: str, stdin: str | None = None) -> Result:
    assert worker.token is not None
    env = {"DREAMTREE_D1_URL": worker.url, "DREAMTREE_D1_TOKEN": worker.token, "DREAMTREE_ARGON2": "fast",
           "DREAMTREE_ENGINE": None, "DREAMTREE_DB": None}
    command, *rest = args
    group = [command, rest.pop(0)] if command in {"users", "skills"} else [command]
    return CliRunner().invoke(main, [*group, "--engine", "d1", "--db", str(tmp_path / "dreamtree.db"), *rest],
                              input=stdin, env=env)


def test_seed_export_import_review_purge_and_check_through_the_worker(d1: WorkerProcess, tmp_path: Path) -> None:
    first = dreamtree(d1, tmp_path, "seed")
    assert first.exit_code == 0, first.output
    assert "written in one atomic batch" in first.output
    again = dreamtree(d1, tmp_path, "seed")
    assert again.exit_code == 0, again.output
    assert "nothing to change" in again.output
    assert rows(d1, "SELECT count(*) AS n FROM exercise_sequence")[0]["n"] > 0

    settings = Settings(db_path=tmp_path / "dreamtree.db", secure_cookies=True, d1_strict=True, argon2="fast",
                        engine="d1", d1_url=d1.url, d1_token=d1.token)
    with TestClient(create_app(settings), base_url="https://testserver.local") as client:
        ann = Reader(client)
        ann.start()
        assert ann.put("/api/exercises/1.1.1.v1/response", {"response": {"text": "typed on d1"}}).status_code == 200
        ann.claim("ann@example.com")
        skill = ann.post("/api/skills", {"name": "Knot tying at sea", "category": "knowledge"}).json()
        bob = Reader(client)
        bob.start()
        bob.claim("bob@example.com")

        out = tmp_path / "ann.json"
        exported = dreamtree(d1, tmp_path, "export", "--user", "ann@example.com", "--password-stdin", str(out),
                             stdin=PASSWORD + "\n")
        assert exported.exit_code == 0, exported.output
        assert json.loads(out.read_text())["encrypted"] is True and "typed on d1" not in out.read_text()

        imported = dreamtree(d1, tmp_path, "import", "--user", "bob@example.com", "--password-stdin", str(out),
                             stdin=PASSWORD + "\n")
        assert imported.exit_code == 0, imported.output
        assert "exercises          inserted     1" in imported.output
        assert bob.get("/api/exercises/1.1.1.v1").json()["response"]["response"] == {"text": "typed on d1"}

    pending = dreamtree(d1, tmp_path, "skills", "review", "--list")
    assert pending.exit_code == 0, pending.output
    assert "Knot tying at sea" in pending.output
    approved = dreamtree(d1, tmp_path, "skills", "review", "--approve", str(skill["id"]))
    assert approved.exit_code == 0, approved.output
    assert rows(d1, "SELECT review_status FROM skills WHERE id = ?", skill["id"])[0]["review_status"] == "approved"

    purge = dreamtree(d1, tmp_path, "users", "purge-anonymous")
    assert purge.exit_code == 0, purge.output
    assert "dry run: 0 anonymous workbook(s)" in purge.output

    check = dreamtree(d1, tmp_path, "check")
    assert check.exit_code == 0, check.output
    assert "foreign keys: ok" in check.output and "schema:       ok" in check.output
    assert not (tmp_path / "dreamtree.db").exists()


@pytest.mark.parametrize("args", [("backup", "snap.db"), ("restore", "snap.db", "--yes"), ("export-d1", "dump.sql"),
                                  ("import-d1", "dump.sql")])
def test_sqlite_only_commands_refuse_on_d1_and_touch_nothing(d1: WorkerProcess, tmp_path: Path,
                                                             args: tuple[str, ...]) -> None:
    command, name, *rest = args
    target = tmp_path / name
    reads_a_file = command in {"restore", "import-d1"}
    if reads_a_file:
        target.write_bytes(b"a file that must stay as it is")
    result = dreamtree(d1, tmp_path, command, str(target), *rest)
    assert result.exit_code == 1
    (line,) = result.output.strip().splitlines()
    assert line.startswith(f"dreamtree: error: `dreamtree {command}` works on the SQLite file only; on D1 use Time Travel")
    assert not (tmp_path / "dreamtree.db").exists()
    if reads_a_file:
        assert target.read_bytes() == b"a file that must stay as it is"
    else:
        assert not target.exists()
