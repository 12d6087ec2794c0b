"""Settings over HTTP: the five options each, a known personality type, partial changes that
move `updated_at` only when something changed, every refusal, two readers."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, get_args, get_type_hints

import msgspec
import pytest

from app import timeutil
from app.db.connection import connect_sync, run_batch
from app.db.engine import ConstraintFailed, GuardFailed, Stmt, Work, Write
from app.domain import keys, portability
from app.domain.errors import Invalid
from app.domain.sessions import Principal
from app.domain.settings import (
    BACKGROUND_COLORS,
    DEFAULTS,
    FONTS,
    OPTIONS,
    TEXT_COLORS,
    ReaderSettings,
    change_work,
)
from tests.conftest import JobLog
from tests.helpers import Reader, query

pytestmark = pytest.mark.both_engines


@pytest.fixture
def reader(seeded: Path, new_reader: Callable[[], Reader]) -> Reader:
    r = new_reader()
    r.start()
    return r


def row_of(db_path: Path, user_id: str) -> sqlite3.Row:
    conn = connect_sync(db_path, strict=False)
    try:
        return conn.execute("SELECT * FROM user_settings WHERE user_id = ?", (user_id,)).fetchone()
    finally:
        conn.close()


def test_a_new_reader_has_the_default_settings(reader: Reader) -> None:
    body = reader.get("/api/settings").json()
    assert body == {"background_color": "cream", "text_color": "charcoal", "font": "system", "personality_type": None}
    assert body == DEFAULTS == reader.get("/api/me").json()["settings"]


def test_a_change_is_partial_and_returns_the_full_settings(reader: Reader) -> None:
    changed = reader.patch("/api/settings", {"font": "dyslexic"})
    assert changed.status_code == 200, changed.text
    assert changed.json() == {**DEFAULTS, "font": "dyslexic"}
    again = reader.patch("/api/settings", {"background_color": "night", "text_color": "ivory"})
    assert again.json() == {"background_color": "night", "text_color": "ivory", "font": "dyslexic", "personality_type": None}
    assert reader.get("/api/settings").json() == again.json() == reader.get("/api/me").json()["settings"]


@pytest.mark.parametrize(("field", "value"), [(f, v) for f, choices in OPTIONS.items() for v in choices])
def test_every_documented_option_is_accepted(reader: Reader, field: str, value: str) -> None:
    response = reader.patch("/api/settings", {field: value})
    assert response.status_code == 200, response.text
    assert response.json()[field] == value


def test_the_options_are_the_five_documented_ones() -> None:
    assert BACKGROUND_COLORS == ("cream", "sage", "sky", "blush", "night")
    assert TEXT_COLORS == ("charcoal", "ink", "espresso", "forest", "ivory")
    assert FONTS == ("system", "serif", "sans", "mono", "dyslexic")


def test_the_export_format_allows_exactly_the_same_options() -> None:
    hints = get_type_hints(portability.SettingsDoc)
    for field, choices in OPTIONS.items():
        assert get_args(hints[field]) == choices, f"portability.SettingsDoc.{field} differs from app.domain.settings"


def test_a_personality_type_is_set_and_cleared(reader: Reader) -> None:
    assert reader.patch("/api/settings", {"personality_type": "ENFP"}).json()["personality_type"] == "ENFP"
    assert reader.get("/api/me").json()["settings"]["personality_type"] == "ENFP"
    cleared = reader.patch("/api/settings", {"personality_type": None})
    assert cleared.status_code == 200 and cleared.json()["personality_type"] is None


def test_an_unknown_personality_type_is_refused(reader: Reader, seeded: Path) -> None:
    me = reader.get("/api/me").json()
    reader.patch("/api/settings", {"font": "serif", "personality_type": "INTJ"})
    before = row_of(seeded, me["id"])
    for code in ("XXXX", "enfp", "", "INTJ "):
        response = reader.patch("/api/settings", {"font": "mono", "personality_type": code})
        assert response.status_code == 422, code
        assert response.json()["code"] == "unknown_personality_type"
    assert dict(row_of(seeded, me["id"])) == dict(before)


@pytest.mark.parametrize(
    "body",
    [
        {"background_color": "purple"},
        {"text_color": "black"},
        {"font": "comic-sans"},
        {"font": "Serif"},
        {"font": None},
        {"background_color": None},
        {"text_color": 3},
        {"personality_type": 16},
        {"personality_type": "X" * 65},
        {"colour": "sky"},
        {"font": "mono", "theme": "dark"},
        [],
        "night",
    ],
)
def test_anything_else_is_refused_and_changes_nothing(reader: Reader, seeded: Path, body: Any) -> None:
    me = reader.get("/api/me").json()
    before = row_of(seeded, me["id"])
    response = reader.patch("/api/settings", body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "validation_failed"
    assert dict(row_of(seeded, me["id"])) == dict(before)


def test_a_body_that_is_not_json_is_400(reader: Reader) -> None:
    response = reader.patch("/api/settings", content=b"{font: mono", headers={"content-type": "application/json"})
    assert response.status_code == 400 and response.json()["code"] == "invalid_json"


def test_updated_at_moves_only_when_something_changed(reader: Reader, seeded: Path, clock) -> None:
    me = reader.get("/api/me").json()
    created = row_of(seeded, me["id"])
    assert created["created_at"] == created["updated_at"]
    clock.advance(minutes=5)
    assert reader.patch("/api/settings", {}).status_code == 200
    assert reader.patch("/api/settings", {"font": "system", "personality_type": None}).status_code == 200
    assert row_of(seeded, me["id"])["updated_at"] == created["created_at"]  # still "never changed"
    reader.patch("/api/settings", {"font": "sans"})
    changed = row_of(seeded, me["id"])
    assert changed["updated_at"] == timeutil.iso(clock.moment)
    clock.advance(minutes=5)
    reader.patch("/api/settings", {"font": "sans"})
    assert row_of(seeded, me["id"])["updated_at"] == changed["updated_at"]


def test_a_change_in_the_first_millisecond_still_counts_as_a_change(seeded: Path, new_reader, clock) -> None:
    # Import's merge reads created_at != updated_at as "the reader changed their settings".
    r = new_reader()
    me = r.start()
    r.patch("/api/settings", {"font": "mono"})
    row = row_of(seeded, me["id"])
    assert row["font"] == "mono" and row["updated_at"] > row["created_at"]


def test_a_change_is_a_read_and_a_write_batch_and_a_read_one_read_batch(reader: Reader, db_jobs: JobLog) -> None:
    module = "app.domain.settings"
    reader.patch("/api/settings", {"font": "mono", "personality_type": "ENFP"})
    assert db_jobs.mine() == [("read", module), ("write", module)]
    db_jobs.clear()
    reader.get("/api/settings")
    assert db_jobs.mine() == [("read", module)]
    db_jobs.clear()
    reader.patch("/api/settings", {"font": "mono"})  # nothing changes: nothing is written
    assert db_jobs.mine() == [("read", module)]


def test_settings_need_a_session(seeded: Path, new_reader) -> None:
    stranger = new_reader()
    assert stranger.get("/api/settings").status_code == 401
    response = stranger.patch("/api/settings", {"font": "mono"})
    assert response.status_code == 401 and response.json()["code"] == "no_session"


def test_a_change_without_the_csrf_header_is_refused(reader: Reader) -> None:
    response = reader.patch("/api/settings", {"font": "mono"}, csrf=False)
    assert response.status_code == 403 and response.json()["code"] == "csrf_failed"
    assert reader.get("/api/settings").json()["font"] == "system"


def test_two_readers_have_their_own_settings(seeded: Path, new_reader) -> None:
    ann, ben = new_reader(), new_reader()
    ann.start()
    ben.start()
    ann.patch("/api/settings", {"background_color": "night", "text_color": "ivory", "personality_type": "INTJ"})
    assert ben.get("/api/settings").json() == DEFAULTS
    ben.patch("/api/settings", {"font": "serif"})
    assert ann.get("/api/settings").json() == {
        "background_color": "night", "text_color": "ivory", "font": "system", "personality_type": "INTJ"}


def test_settings_responses_are_never_cached(reader: Reader) -> None:
    assert reader.get("/api/settings").headers["cache-control"] == "no-store"


def test_the_api_type_allows_exactly_the_documented_options() -> None:
    hints = get_type_hints(ReaderSettings)
    for field, choices in OPTIONS.items():
        assert get_args(hints[field]) == choices, field


def test_a_reader_whose_row_was_lost_sees_the_defaults_and_a_change_repairs_it(reader: Reader, seeded: Path,
                                                                                clock) -> None:
    me = reader.get("/api/me").json()
    query(seeded, "DELETE FROM user_settings WHERE user_id = ?", (me["id"],))
    assert reader.get("/api/settings").json() == DEFAULTS
    assert reader.patch("/api/settings", {"font": "serif"}).json() == {**DEFAULTS, "font": "serif"}
    row = row_of(seeded, me["id"])
    assert row["font"] == "serif" and row["updated_at"] > row["created_at"]


# --- concurrent changes: the write says only what it was given ------------------------------


def read_then(conn: sqlite3.Connection, work: Work[Any], meanwhile: Callable[[], None]) -> Any:
    """Run a work like the d1 engine does (its read batch, then its write batch) with
    `meanwhile()` (another request, another process) between the two: its answer."""
    batch = next(work)
    results = run_batch(conn, batch.statements, False)
    meanwhile()
    try:
        write = work.send(results)
    except StopIteration as done:
        return done.value
    assert isinstance(write, Write)
    try:
        after = run_batch(conn, write.statements, True)
    except (GuardFailed, ConstraintFailed) as failed:
        try:
            work.throw(failed)
        except StopIteration as done:  # pragma: no cover - the works here answer by raising
            return done.value
        raise AssertionError("the work wrote past a failed batch") from None
    try:
        work.send(after)
    except StopIteration as done:
        return done.value
    raise AssertionError("a work yields nothing after its write")


def change_now(conn: sqlite3.Connection, principal: Principal, changes: dict[str, Any]) -> ReaderSettings:
    return read_then(conn, change_work(principal, changes, timeutil.now_iso()), lambda: None)


@pytest.fixture
def two_tabs(seeded: Path) -> Iterator[tuple[sqlite3.Connection, Principal]]:
    conn = connect_sync(seeded)
    try:
        stamp = "2026-03-08T07:30:00.000Z"
        conn.execute("INSERT INTO users (id, created_at, updated_at) VALUES ('ann', ?, ?)", (stamp, stamp))
        conn.execute("INSERT INTO user_settings (user_id, created_at, updated_at) VALUES ('ann', ?, ?)", (stamp, stamp))
        yield conn, Principal("ann", "sid-ann", keys.new_data_key(), True)
    finally:
        conn.close()


def test_two_tabs_changing_different_settings_at_once_keep_both(two_tabs) -> None:
    conn, ann = two_tabs
    ours = change_work(ann, {"font": "mono"}, "2026-03-08T07:31:00.000Z")
    answer = read_then(conn, ours, lambda: change_now(conn, ann, {"background_color": "night", "personality_type": "INTJ"}))
    expected = {"background_color": "night", "text_color": "charcoal", "font": "mono", "personality_type": "INTJ"}
    assert msgspec.to_builtins(answer) == expected  # the answer is the row after our write: theirs included
    assert {k: row_of_conn(conn)[k] for k in expected} == expected


def test_clearing_the_type_while_another_tab_changes_the_font_keeps_both(two_tabs) -> None:
    conn, ann = two_tabs
    change_now(conn, ann, {"personality_type": "ENFP"})
    ours = change_work(ann, {"personality_type": None}, "2026-03-08T07:32:00.000Z")
    read_then(conn, ours, lambda: change_now(conn, ann, {"font": "serif"}))
    row = row_of_conn(conn)
    assert (row["personality_type"], row["font"]) == (None, "serif")


def test_a_change_another_tab_already_made_leaves_updated_at_alone(two_tabs) -> None:
    conn, ann = two_tabs
    ours = change_work(ann, {"font": "mono"}, "2026-03-08T09:00:00.000Z")
    answer = read_then(conn, ours, lambda: read_then(conn, change_work(ann, {"font": "mono"}, "2026-03-08T08:00:00.000Z"),
                                                     lambda: None))
    assert answer.font == "mono"
    assert row_of_conn(conn)["updated_at"] == "2026-03-08T08:00:00.000Z"  # theirs: ours changed nothing


def test_a_personality_type_removed_meanwhile_is_refused_and_nothing_changes(two_tabs) -> None:
    conn, ann = two_tabs
    ours = change_work(ann, {"font": "mono", "personality_type": "ENFP"}, "2026-03-08T09:00:00.000Z")
    with pytest.raises(Invalid) as refused:
        read_then(conn, ours, lambda: run_batch(conn, [Stmt("DELETE FROM personality_types WHERE code = 'ENFP'")], True))
    assert refused.value.instance_code == "unknown_personality_type"
    assert row_of_conn(conn)["font"] == "system"


def row_of_conn(conn: sqlite3.Connection) -> sqlite3.Row:
    return conn.execute("SELECT * FROM user_settings WHERE user_id = 'ann'").fetchone()
