"""Settings over HTTP: the five options each, a known personality type, partial changes that
move `updated_at` only when something changed, every refusal, two readers."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, get_args, get_type_hints

import pytest

from app import timeutil
from app.db.connection import connect_sync
from app.domain import portability
from app.domain.settings import BACKGROUND_COLORS, DEFAULTS, FONTS, OPTIONS, TEXT_COLORS
from tests.conftest import JobLog
from tests.helpers import Reader


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


def test_a_change_is_one_write_job_and_a_read_one_read_job(reader: Reader, db_jobs: JobLog) -> None:
    reader.patch("/api/settings", {"font": "mono", "personality_type": "ENFP"})
    assert db_jobs.of("app.domain.settings") == ["write"]
    db_jobs.clear()
    reader.get("/api/settings")
    assert db_jobs.of("app.domain.settings") == ["read"]


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
