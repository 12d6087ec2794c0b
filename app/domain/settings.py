"""A reader's settings: three visual options of five choices each, and a personality type.

The options are defined here once (the Literal types and their tuples); the HTTP layer and
the export format should both take them from here, so a sixth colour is added in one place.

Rules:
- a change is partial: only the fields given change;
- `updated_at` moves only when a value really changed. Import's merge reads
  `created_at != updated_at` as "the reader changed their settings" (app/domain/portability/incoming.py),
  so a PATCH that changes nothing must leave the row alone;
- the personality type is a code of `personality_types` or null; anything else is refused
  with 422 `unknown_personality_type` and nothing changes.
Each request is one unit of work (app/db/engine.py). A change reads the row (and whether the
personality type exists), and writes only the fields it was given, in one statement that
also decides whether anything changed; so two tabs changing different settings at once
keep both changes, whichever writes last.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal, TypedDict, get_args

import msgspec

from app import timeutil
from app.db.engine import ConstraintFailed, Engine, Read, Row, Stmt, Work, Write
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
class StoredSettings(TypedDict):
    """A reader's settings as a user_settings row holds them."""

    background_color: BackgroundColor
    text_color: TextColor
    font: Font
    personality_type: str | None


DEFAULTS: StoredSettings = {
    "background_color": "cream", "text_color": "charcoal", "font": "system", "personality_type": None,
}


class ReaderSettings(msgspec.Struct, frozen=True):
    """A reader's settings as the API shows them. The personality type is a code of the
    `personality_types` table (the seed's, so not a fixed set here), or null."""

    background_color: BackgroundColor
    text_color: TextColor
    font: Font
    personality_type: str | None


def settings_from_row(row: Row | None) -> StoredSettings:
    """The settings from a user_settings row as a plain dict (the defaults when there is
    none): the export format and the import's merge build on it."""
    if row is None:
        return DEFAULTS.copy()
    return StoredSettings(background_color=row["background_color"], text_color=row["text_color"], font=row["font"],
                          personality_type=row["personality_type"])


def settings_of(row: Row | None) -> ReaderSettings:
    """The API's settings from a user_settings row (the defaults when there is none)."""
    return ReaderSettings(**settings_from_row(row))


def check_changes(changes: dict[str, object]) -> dict[str, str | None]:
    """Refuse unknown fields and values outside the five options before anything is read;
    the changes, then known to be text or null."""
    unknown = sorted(set(changes) - set(FIELDS))
    if unknown:
        raise Invalid(f"Unknown setting: {', '.join(unknown)}.", code="unknown_setting")
    for name, choices in OPTIONS.items():
        if name in changes and changes[name] not in choices:
            raise Invalid(f"{name} must be one of {', '.join(choices)}.", code=f"invalid_{name}")
    value = changes.get("personality_type")
    if value is not None and not isinstance(value, str):
        raise Invalid("personality_type must be a personality type code or null.", code="unknown_personality_type")
    return {name: value for name, value in changes.items() if value is None or isinstance(value, str)}


def read_work(principal: Principal) -> Work[ReaderSettings]:
    (row,) = yield Read(Stmt(Q.settings_of_user, (principal.user_id,)))
    return settings_of(row.one())


async def read_settings(db: Engine, principal: Principal) -> ReaderSettings:
    return await db.query(lambda: read_work(principal), principal)


def _unknown_type(code: str) -> Invalid:
    return Invalid(f"Unknown personality type {code!r}; use one of GET /api/personality-types.",
                   code="unknown_personality_type")


def change_work(principal: Principal, changes: dict[str, str | None], stamp: str) -> Work[ReaderSettings]:
    """Reads the row and whether the personality type exists; writes nothing when nothing
    would change; otherwise writes the given fields only and reads the row back."""
    user = principal.user_id
    code = changes.get("personality_type")
    reads = [Stmt(Q.settings_of_user, (user,))]
    if code is not None:
        reads.append(Stmt(Q.personality_type_known, (code,)))
    results = yield Read(*reads)
    if code is not None and not results[1].value():
        raise _unknown_type(code)
    row = results[0].one()
    current = settings_from_row(row)
    if row is not None and {**current, **changes} == current:
        return settings_of(row)
    writes = []
    if row is None:
        # Every account gets its row at creation; this only repairs one that lost it.
        writes.append(Stmt(Q.insert_missing_settings, (user, stamp)))
    writes += [
        Stmt(Q.update_given_settings, (changes.get("background_color"), changes.get("text_color"),
                                       changes.get("font"), int("personality_type" in changes), code,
                                       stamp, later_stamp(stamp), user)),
        Stmt(Q.settings_of_user, (user,)),
    ]
    try:
        after = yield Write(writes)
    except ConstraintFailed as failed:
        if code is not None and "FOREIGN KEY" in failed.message:
            # the type was removed (an editor's re-seed) between the read and the write
            raise _unknown_type(code) from None
        raise
    return settings_of(after[-1].one())


async def change_settings(db: Engine, principal: Principal, changes: dict[str, object]) -> ReaderSettings:
    """Apply a partial change; the full settings come back either way."""
    checked = check_changes(changes)
    stamp = timeutil.now_iso()
    return await db.change(lambda: change_work(principal, checked, stamp), principal)


def later_stamp(stamp: str) -> str:
    """A millisecond after `stamp`: what updated_at becomes when a change happens in the row's
    first millisecond, so that it still reads as a change (created_at != updated_at) to
    import's merge."""
    return timeutil.iso(timeutil.parse(stamp) + timedelta(milliseconds=1))


__all__ = [
    "BACKGROUND_COLORS",
    "DEFAULTS",
    "FIELDS",
    "FONTS",
    "OPTIONS",
    "TEXT_COLORS",
    "BackgroundColor",
    "Font",
    "ReaderSettings",
    "TextColor",
    "change_settings",
    "change_work",
    "check_changes",
    "read_settings",
    "read_work",
    "settings_from_row",
    "settings_of",
]
