"""What a stolen database file reveals: none of the answers typed, no session tokens, no keys."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from app.db.connection import connect_sync
from tests.helpers import OTHER_PASSWORD, PASSWORD, Reader

CANARIES = [f"canary-{i}-zq{i * 7919}x" for i in range(6)]


def file_bytes(db_path: Path) -> bytes:
    data = b""
    for suffix in ("", "-wal", "-shm"):
        path = Path(str(db_path) + suffix)
        if path.exists():
            data += path.read_bytes()
    return data


def test_database_and_wal_hold_none_of_the_answers(seeded: Path, new_reader) -> None:
    ann: Reader = new_reader()
    ann.start()
    ann.put("/api/exercises/1.1.1.v1/response", {"response": {"text": CANARIES[0]}})  # anonymous, first write
    ann.put("/api/exercises/1.1.2.v1/response", {"response": {"text": CANARIES[1]}})
    ann.claim("ann@example.com")
    ann.put("/api/exercises/1.2.1.v1/response", {"response": {"text": CANARIES[2]}})
    ann.put("/api/exercises/1.1.1.v1/response", {"response": {"text": CANARIES[3]}})  # an edit
    ann.post("/api/account/password", {"current_password": PASSWORD, "new_password": OTHER_PASSWORD})
    bob: Reader = new_reader()
    bob.start()
    bob.put("/api/exercises/1.1.1.v1/response", {"response": {"text": CANARIES[4], "list": [CANARIES[5]]}})
    dump = file_bytes(seeded)  # the live file and its WAL, before any checkpoint
    assert len(dump) > 100_000
    for canary in CANARIES:
        assert canary.encode() not in dump, canary
    cookie = ann.session_cookie
    assert cookie.split(".")[1].encode() not in dump  # the session token
    for password in (PASSWORD, OTHER_PASSWORD):
        assert password.encode() not in dump
    conn = connect_sync(seeded, strict=False)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    for canary in CANARIES:
        assert canary.encode() not in file_bytes(seeded)


def test_sign_in_timing_does_not_tell_which_emails_exist(seeded: Path, new_reader) -> None:
    ann: Reader = new_reader()
    ann.start()
    ann.claim("ann@example.com")
    probe: Reader = new_reader()
    probe.get("/healthz")

    def timed(email: str) -> float:
        started = time.perf_counter()
        response = probe.login(email, "a wrong password for sure")
        assert response.status_code == 401
        return time.perf_counter() - started

    known, unknown = [], []
    for i in range(4):  # stays under the back-off of one address on one email (5 free failures)
        known.append(timed("ann@example.com"))
        unknown.append(timed(f"nobody{i}@example.com"))
    # Both paths run the same Argon2 work: the medians are within a factor of each other, where
    # a "quick exit" for unknown emails would be tens of times faster.
    ratio = statistics.median(unknown) / statistics.median(known)
    assert 0.5 < ratio < 2.0, (known, unknown)
