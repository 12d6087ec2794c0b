"""Operator commands: purge idle anonymous workbooks, reset a lost login."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from app.cli import main
from app.db.connection import connect_sync
from tests.helpers import OTHER_PASSWORD, PASSWORD, Reader


def run(*args: str, input: str | None = None):
    return CliRunner().invoke(main, list(args), input=input, env={"DREAMTREE_ARGON2": "fast"})


def age_everything(db_path: Path, days: int) -> None:
    conn = connect_sync(db_path, strict=False)
    try:
        old = f"2020-01-{days % 28 + 1:02d}T00:00:00.000Z"
        conn.execute("UPDATE users SET created_at = ?", (old,))
        conn.execute("UPDATE sessions SET last_seen_at = ?, created_at = ?", (old, old))
    finally:
        conn.close()


def count(db_path: Path, sql: str) -> int:
    conn = connect_sync(db_path, strict=False)
    try:
        return conn.execute(sql).fetchone()[0]
    finally:
        conn.close()


def test_purge_anonymous_is_a_dry_run_by_default(seeded: Path, new_reader) -> None:
    idle, saved = new_reader(), new_reader()
    idle.start()
    saved.start()
    saved.claim("ann@example.com")
    age_everything(seeded, 1)
    dry = run("users", "purge-anonymous", "--db", str(seeded), "--idle-days", "30")
    assert dry.exit_code == 0 and "dry run: 1 anonymous" in dry.output
    assert count(seeded, "SELECT count(*) FROM users") == 2
    applied = run("users", "purge-anonymous", "--db", str(seeded), "--idle-days", "30", "--apply")
    assert applied.exit_code == 0 and "deleted 1" in applied.output
    assert count(seeded, "SELECT count(*) FROM users") == 1
    assert count(seeded, "SELECT is_anonymous FROM users") == 0


def test_recently_used_anonymous_workbooks_are_kept(seeded: Path, new_reader) -> None:
    new_reader().start()
    result = run("users", "purge-anonymous", "--db", str(seeded), "--idle-days", "1", "--apply")
    assert "deleted 0" in result.output


def test_reset_login_erases_content_keeps_place_and_gives_a_code(seeded: Path, new_reader) -> None:
    ann: Reader = new_reader()
    ann.start()
    ann.put("/api/exercises/1.1.1.v1/response", {"response": {"text": "lost forever"}})
    ann.claim("ann@example.com")
    refused = run("users", "reset-login", "ann@example.com", "--db", str(seeded), input="n\n")
    assert refused.exit_code == 1 and "nothing changed" in refused.output
    result = run("users", "reset-login", "ann@example.com", "--db", str(seeded), "--yes")
    assert result.exit_code == 0, result.output
    code = result.output.split("not stored): ")[1].split()[0]
    assert ann.get("/api/me").status_code == 401
    back: Reader = new_reader()
    back.get("/healthz")
    recovered = back.post("/api/account/recover", {"email": "ann@example.com", "recovery_code": code,
                                                    "new_password": OTHER_PASSWORD})
    assert recovered.status_code == 200, recovered.text
    outline = back.get("/api/workbook").json()
    assert outline["parts"][0]["modules"][0]["exercises"][0]["status"] == "answered"
    response = back.get("/api/exercises/1.1.1.v1").json()["response"]["response"]
    assert set(response) == {"erased_at"}


def test_reset_login_unknown_email_is_one_line(db_path: Path) -> None:
    result = run("users", "reset-login", "ghost@example.com", "--db", str(db_path), "--yes")
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == "dreamtree: error: No account with the email ghost@example.com."


@pytest.mark.parametrize("command", [["users", "purge-anonymous"], ["users", "reset-login", "a@example.com", "--yes"]])
def test_operator_commands_refuse_a_missing_database(tmp_path: Path, command: list[str]) -> None:
    result = run(*command, "--db", str(tmp_path / "missing.db"))
    assert result.exit_code == 1 and "no such database" in result.output
    assert list(tmp_path.iterdir()) == []  # neither a database nor a key file was created


# --- on the engine seam: round trips and what a change made meanwhile does ---------------------


def test_purge_is_one_read_for_a_dry_run_and_one_write_batch_per_chunk(seeded: Path, new_reader, db_jobs) -> None:
    from app.domain import accounts

    for _ in range(3):
        new_reader().start()
    age_everything(seeded, 1)
    db_jobs.clear()
    assert "dry run: 3 anonymous" in run("users", "purge-anonymous", "--db", str(seeded), "--idle-days", "30").output
    assert db_jobs.seen == [("read", accounts.__name__)]
    db_jobs.clear()
    assert "deleted 3" in run("users", "purge-anonymous", "--db", str(seeded), "--idle-days", "30", "--apply").output
    assert db_jobs.seen == [("write", accounts.__name__)]  # decided inside the batch: nothing to read first


def test_purge_goes_chunk_by_chunk_and_keeps_a_workbook_used_since_the_count(seeded: Path, new_reader,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from app.domain import accounts
    from app.timeutil import now_iso

    monkeypatch.setattr(accounts, "PURGE_CHUNK", 2)
    readers = [new_reader() for _ in range(5)]
    ids = []
    for reader in readers:
        ids.append(reader.start()["id"])
        saved = reader.put("/api/exercises/1.1.1.v1/response", {"response": {"text": "mine"}, "skills": ["composure"]})
        assert saved.status_code == 200, saved.text
    age_everything(seeded, 1)
    assert count(seeded, "SELECT count(*) FROM exercise_skills") == 5
    assert "dry run: 5 anonymous" in run("users", "purge-anonymous", "--db", str(seeded), "--idle-days", "30").output
    # one comes back between the operator's count and the purge
    conn = connect_sync(seeded, strict=False)
    try:
        conn.execute("UPDATE sessions SET last_seen_at = ? WHERE user_id = ?", (now_iso(), ids[0]))
    finally:
        conn.close()
    applied = run("users", "purge-anonymous", "--db", str(seeded), "--idle-days", "30", "--apply")
    assert "deleted 4" in applied.output, applied.output
    assert readers[0].get("/api/exercises/1.1.1.v1").json()["response"]["response"] == {"text": "mine"}
    assert count(seeded, "SELECT count(*) FROM users") == 1
    assert count(seeded, "SELECT count(*) FROM exercise_skills") == 1  # only the kept reader's tag
    assert count(seeded, "SELECT count(*) FROM exercise_responses") == 1


def test_reset_login_is_one_read_and_one_write(seeded: Path, new_reader, db_jobs) -> None:
    from app.domain import accounts

    ann: Reader = new_reader()
    ann.start()
    for place in ("1.1.1.v1", "1.1.2.v1"):
        ann.put(f"/api/exercises/{place}/response", {"response": {"text": "lost"}})
    ann.claim("ann@example.com")
    db_jobs.clear()
    result = run("users", "reset-login", "ann@example.com", "--db", str(seeded), "--yes")
    assert "erased 2 answer(s)" in result.output, result.output
    assert db_jobs.seen == [("read", accounts.__name__), ("write", accounts.__name__)]


@pytest.mark.parametrize("meanwhile", ["answer_saved", "password_changed"])
def test_reset_login_is_refused_when_an_answer_or_the_password_changed_after_it_read(seeded: Path, new_reader,
                                                                                     meanwhile: str) -> None:
    from app.db.connection import run_batch
    from app.db.engine import GuardFailed, Write
    from app.domain import accounts, keys
    from app.domain.errors import Conflict

    ann: Reader = new_reader()
    ann.start()
    ann.put("/api/exercises/1.1.1.v1/response", {"response": {"text": "read"}})
    ann.claim("ann@example.com")
    conn = connect_sync(seeded)
    try:
        reads = accounts.reset_read_work("ann@example.com")
        batch = next(reads)
        with pytest.raises(StopIteration) as done:
            reads.send(run_batch(conn, batch.statements, False))
        row, ids = done.value.value
        assert len(ids) == 1
        dek = keys.new_data_key()
        erased = [[i, keys.seal_column(dek, {"erased_at": "x"}, table="exercise_responses", row_id=i)] for i in ids]
        write = accounts.reset_write_work(row, erased, "hash", "wrapped", "2026-03-08T07:30:00.000Z")
        batch = next(write)
        assert isinstance(batch, Write)
        # between the operator's read and write, the reader saves another answer, or changes the password
        if meanwhile == "answer_saved":
            assert ann.put("/api/exercises/1.1.2.v1/response", {"response": {"text": "new"}}).status_code == 200
        else:
            changed = ann.post("/api/account/password", {"current_password": PASSWORD, "new_password": OTHER_PASSWORD})
            assert changed.status_code == 204
        with pytest.raises(GuardFailed) as failed:
            run_batch(conn, batch.statements, True)
        assert failed.value.name == {"answer_saved": "answers_changed", "password_changed": "credentials_changed"}[meanwhile]
        with pytest.raises(Conflict) as answer:
            write.throw(failed.value)
        assert answer.value.instance_code == "changed_concurrently"
    finally:
        conn.close()
    # nothing was written: the answers still open with the reader's key, and the session stands
    assert ann.get("/api/exercises/1.1.1.v1").json()["response"]["response"] == {"text": "read"}
    if meanwhile == "answer_saved":
        assert ann.get("/api/exercises/1.1.2.v1").json()["response"]["response"] == {"text": "new"}
