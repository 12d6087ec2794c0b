"""Settings: the incoming ones when the reader never changed theirs, else the newer side. A
file's settings carry no date of their own (they are dated by the file's `exported_at`), so
settings that are exactly the defaults say nothing was chosen: they never replace settings
the reader chose. A personality type this installation does not know is left out with a
warning."""

from __future__ import annotations

from app.db.engine import Stmt, changed
from app.db.queries import Q
from app.domain.portability.incoming import Incoming
from app.domain.portability.merge.context import Context
from app.domain.settings import DEFAULTS, FIELDS, later_stamp


def merge_settings(ctx: Context, book: Incoming) -> None:
    if book.settings is None:
        return
    held = ctx.held.settings
    wanted = {name: book.settings.get(name) for name in FIELDS}
    personality = wanted["personality_type"]
    if personality is not None and personality not in ctx.known.personality_types:
        ctx.report.warn("settings", f"unknown personality type {personality!r} left out")
        wanted["personality_type"] = held["personality_type"] if held is not None else None
    values = (wanted["background_color"], wanted["text_color"], wanted["font"], wanted["personality_type"])
    if held is None:
        ctx.writes += [Stmt(Q.import_insert_settings, (ctx.user_id, *values, ctx.stamp)), changed("settings_changed")]
        ctx.report.add("settings", "inserted")
        return
    never_changed = held["created_at"] == held["updated_at"]
    nothing_chosen = wanted == DEFAULTS
    if ({name: held[name] for name in FIELDS} == wanted or nothing_chosen
            or not (never_changed or book.settings_at > held["updated_at"])):
        ctx.report.add("settings", "unchanged")
        return
    # A change in the row's first millisecond must still read as one (created_at != updated_at).
    stamp = later_stamp(ctx.stamp) if ctx.stamp == held["created_at"] else ctx.stamp
    ctx.writes += [Stmt(Q.import_update_settings, (*values, stamp, ctx.user_id, held["updated_at"])),
                   changed("settings_changed")]
    ctx.report.add("settings", "updated")
