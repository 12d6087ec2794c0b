"""A reader's settings: three visual options of five choices each, and a personality type.

The options are defined here once (the Literal types and their tuples); the HTTP layer and
the export format should both take them from here, so a sixth colour is added in one place.

Rules (API.md "Settings and reference data"):
- a change is partial: only the fields given change;
- `updated_at` moves only when a value really changed. Import's merge reads
  `created_at != updated_at` as "the reader changed their settings" (app/domain/portability.py),
  so a PATCH that changes nothing must leave the row alone;
- the personality type is a code of `personality_types` or null; anything else is refused
  with 422 `unknown_personality_type` and nothing changes.
Each request is one database job.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, get_args

from app import timeutil
from app.db.connection import Database
from app.db.queries import Q
from app.domain.errors import Invalid
from app.domain.sessions import Principal

BackgroundColor = Literal["cream", "sage", "sky", "blush", "night"]
TextColor = Literal["charcoal", "ink", "espresso", "forest", "ivory"]
Font = Literal["system", "serif", "sans", "mono", "dyslexic"]

BACKGROUND_COLORS: tuple[str, ...] = get_args(BackgroundColor)
TEXT_COLORS: tuple[str, ...] = get_args(TextColor)
FONTS: tuple[str, ...] = get_args(Font)

OPTIONS: dict[str, tuple[str, ...]] = {
    "background_color": BACKGROUND_COLORS,
    "text_color": TEXT_COLORS,
    "font": FONTS,
}
FIELDS = ("background_color", "text_color", "font", "personality_type")

# The schema's column defaults (user_settings), for a reader whose row is missing.
DEFAULTS: dict[str, str | None] = {
    "background_color": "cream", "text_color": "charcoal", "font": "system", "personality_type": None,
}


def settings_from_row(row: sqlite3.Row | None) -> dict[str, Any]:
    """The API's settings body from a user_settings row (the defaults when there is none)."""
    if row is None:
        return dict(DEFAULTS)
    return {name: row[name] for name in FIELDS}


def check_changes(changes: dict[str, Any]) -> None:
    """Refuse unknown fields and values outside the five options before anything is read."""
    unknown = sorted(set(changes) - set(FIELDS))
    if unknown:
        raise Invalid(f"Unknown setting: {', '.join(unknown)}.", code="unknown_setting")
    for name, choices in OPTIONS.items():
        if name in changes and changes[name] not in choices:
            raise Invalid(f"{name} must be one of {', '.join(choices)}.", code=f"invalid_{name}")
    value = changes.get("personality_type")
    if value is not None and not isinstance(value, str):
        raise Invalid("personality_type must be a personality type code or null.", code="unknown_personality_type")


async def read_settings(db: Database, principal: Principal) -> dict[str, Any]:
    row = await db.read(lambda c: c.execute(Q.settings_of_user, (principal.user_id,)).fetchone())
    return settings_from_row(row)


@dataclass(frozen=True)
class SettingsChange:
    settings: dict[str, Any]
    changed: bool


async def change_settings(db: Database, principal: Principal, changes: dict[str, Any]) -> SettingsChange:
    """Apply a partial change in one write job; the full settings come back either way."""
    check_changes(changes)

    def write(conn: sqlite3.Connection) -> SettingsChange:
        code = changes.get("personality_type")
        if code is not None and not conn.execute(Q.personality_type_known, (code,)).fetchone()[0]:
            raise Invalid(f"Unknown personality type {code!r}; use one of GET /api/personality-types.",
                          code="unknown_personality_type")
        row = conn.execute(Q.settings_of_user, (principal.user_id,)).fetchone()
        stamp = timeutil.now_iso()
        if row is None:
            # Every account gets its row at creation; this only repairs one that lost it.
            conn.execute(Q.insert_default_settings, (principal.user_id, stamp, stamp))
            row = conn.execute(Q.settings_of_user, (principal.user_id,)).fetchone()
        current = settings_from_row(row)
        wanted = {**current, **changes}
        if wanted == current:
            return SettingsChange(current, False)
        conn.execute(Q.update_settings_all, (
            wanted["background_color"], wanted["text_color"], wanted["font"], wanted["personality_type"],
            changed_stamp(stamp, row["created_at"]), principal.user_id))
        return SettingsChange(wanted, True)

    return await db.write(write)


def changed_stamp(stamp: str, created_at: str) -> str:
    """`stamp`, unless it equals created_at: a change in the row's first millisecond must still
    read as a change (created_at != updated_at) to import's merge."""
    if stamp != created_at:
        return stamp
    moment = datetime.fromisoformat(created_at.replace("Z", "+00:00"))
    return timeutil.iso(moment + timedelta(milliseconds=1))


__all__ = [
    "BACKGROUND_COLORS",
    "DEFAULTS",
    "FIELDS",
    "FONTS",
    "OPTIONS",
    "TEXT_COLORS",
    "BackgroundColor",
    "Font",
    "SettingsChange",
    "TextColor",
    "change_settings",
    "check_changes",
    "read_settings",
    "settings_from_row",
]
