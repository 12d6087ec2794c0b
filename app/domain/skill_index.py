"""The skill search index: the `skills` table held in memory, per engine, so a search at
100,000 custom skills costs a few lookups instead of a scan of the table.

What it must answer is exactly what `search_skills` / `search_skills_in_category`
(app/sql/skills.sql) answer: the skills the reader sees (the master list, approved custom
skills, the reader's own), whose name holds the text as a substring ignoring the case of
ASCII letters (SQLite's `lower` and `instr`), ordered by `name COLLATE NOCASE, id`, at most
`limit`. tests/test_skill_index.py compares the two on random data.

Nothing here is needed for correctness: every search reads the table's marker
(`skills_marker`: row count, newest rowid; a review decision moves the decided skill to a new
largest rowid) and the rows from the newest rowid the index knows, in the same batch as the
reader's session (one round trip). Then:

- the marker is the index's: the index answers;
- new custom skills that are not on the shared list (readers adding, imports) and review
  decisions (the decided skills moved to new rowids) are in the rows just read: they join
  or move within the index without a rebuild (an approval lays the shared list's shelves out
  again, from memory);
- anything else (a new master skill, a deleted row, another database): the index is
  rebuilt from one more read batch of the whole table and its marker.

An edit the marker does not see (a re-seed renaming a master skill; an author's account
deleted, which only hides their skills from themselves; an edit by hand in SQL) is seen within
REBUILD_AFTER seconds, when the index is rebuilt whatever the marker says. Another process's
change is seen on the next search, since it moves the marker in the database they share
(docs/skills.md).

Structure: the shared list (master and approved skills) sorted by the search order, once for
every search and once per category, each also as one string of the lowered names joined by
newlines (a query never holds one), so a substring search is `str.find` in C and stops at
the `limit`-th match; the reader's own skills (at most a few hundred) are filtered in Python
and merged in.
"""

from __future__ import annotations

import heapq
import time
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import NamedTuple

from app.db.engine import Row

REBUILD_AFTER = 300.0
"""Seconds after which an index is rebuilt even when the marker has not moved."""

FRESH_ROWS = 500
"""How many rows a search reads from the newest rowid the index knows. More new rows than
this since the last search: a rebuild. With no index yet and a table smaller than this (a
new installation, the tests), the first batch alone builds the index."""

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def fold(text: str) -> str:
    """Lower-case ASCII letters only: SQLite's `lower()` and `NOCASE` (no ICU), which the SQL
    search uses for matching and ordering."""
    return text.lower() if text.isascii() else text.translate(_ASCII_LOWER)


class Marker(NamedTuple):
    row_count: int
    last_rowid: int


class Entry(NamedTuple):
    """One skill, in search order: the folded name, then the id (`name COLLATE NOCASE, id`)."""

    key: str
    id: str
    name: str
    category: str | None
    is_custom: bool
    review_status: str | None


def _shared(row: Row) -> bool:
    return bool(row["is_custom"] == 0 or row["review_status"] == "approved")


_new_entry = tuple.__new__


def _entry(row: Row) -> Entry:
    # Columns by position, in the order of `skills_for_index` (a hot loop: 100,000 rows).
    _number, skill_id, name, category, is_custom, _author, status = row
    return _new_entry(Entry, (fold(name), skill_id, name, category, bool(is_custom), status))


class Shelf:
    """Entries in search order, and their folded names as one string for `str.find`."""

    __slots__ = ("entries", "starts", "text")

    def __init__(self, entries: list[Entry]) -> None:
        self.entries = entries
        self.starts: list[int] = []
        position = 0
        for entry in entries:
            self.starts.append(position)
            position += len(entry.key) + 1
        self.text = "".join(entry.key + "\n" for entry in entries)

    def matching(self, folded: str) -> Iterable[Entry]:
        """The entries whose key holds `folded`, in order, found lazily."""
        if not folded:
            yield from self.entries
            return
        starts, entries, find = self.starts, self.entries, self.text.find
        position = find(folded)
        while position >= 0:
            at = bisect_right(starts, position) - 1
            yield entries[at]
            following = at + 1
            if following == len(entries):
                return
            position = find(folded, starts[following])


@dataclass
class SkillIndex:
    marker: Marker
    last_id: str  # the id of the row at marker.last_rowid ("" in an empty table)
    built: float  # time.monotonic() of the full build
    everything: Shelf
    by_category: dict[str, Shelf]
    own: dict[str, list[Entry]]  # an author's skills not on the shared list, in search order

    @classmethod
    def build(cls, marker: Marker, rows: Sequence[Row]) -> SkillIndex:
        shared: list[Entry] = []
        own: dict[str, list[Entry]] = {}
        last_rowid, last_id = 0, ""
        for row in rows:
            number, skill_id, _name, _category, is_custom, author, status = row
            if number > last_rowid:
                last_rowid, last_id = number, skill_id
            if is_custom == 0 or status == "approved":
                shared.append(_entry(row))
            elif author is not None:
                own.setdefault(author, []).append(_entry(row))
        shared.sort()
        for entries in own.values():
            entries.sort()
        categories: dict[str, list[Entry]] = {}
        for entry in shared:
            if entry.category is not None:
                categories.setdefault(entry.category, []).append(entry)
        return cls(marker, last_id, time.monotonic(), Shelf(shared),
                   {category: Shelf(entries) for category, entries in categories.items()}, own)

    def search(self, user_id: str, text: str, category: str | None, limit: int) -> list[Entry]:
        folded = fold(text)
        shelf = self.everything if category is None else self.by_category.get(category)
        shared = shelf.matching(folded) if shelf is not None else iter(())
        mine = [e for e in self.own.get(user_id, ()) if folded in e.key and (category is None or e.category == category)]
        return list(islice(heapq.merge(shared, mine), limit))

    def knows_own(self, row: Row) -> bool:
        """Whether the row is already among its author's skills here (a decision moved it)."""
        return any(e.id == row["id"] for e in self.own.get(row["created_by"], ()))

    def updated(self, marker: Marker, last_id: str, inserted: Sequence[Row], moved: Sequence[Row]) -> SkillIndex:
        """A new index: this one with `inserted` (new custom skills, none shared) and `moved`
        (skills of its authors' lists, as they are now: decided, some approved)."""
        own = dict(self.own)
        shared: list[Entry] = []
        for row in moved:
            author = row["created_by"]
            own[author] = [e for e in own[author] if e.id != row["id"]]
            if _shared(row):
                shared.append(_entry(row))
            else:
                own[author].append(_entry(row))
        for row in inserted:
            if row["created_by"] is not None:
                own[row["created_by"]] = [*own.get(row["created_by"], ()), _entry(row)]
        for author in {r["created_by"] for r in [*moved, *inserted]} - {None}:
            own[author].sort()
        everything, by_category = self.everything, self.by_category
        if shared:  # approvals join the shared list: its shelves are laid out again (no read)
            everything = Shelf(sorted([*everything.entries, *shared]))
            by_category = dict(by_category)
            for category in {e.category for e in shared if e.category is not None}:
                joining = [e for e in shared if e.category == category]
                present = by_category[category].entries if category in by_category else []
                by_category[category] = Shelf(sorted([*present, *joining]))
        return SkillIndex(marker, last_id, self.built, everything, by_category, own)


def marker_of(row: Row) -> Marker:
    return Marker(int(row["row_count"]), int(row["last_rowid"]))


def brought_up_to_date(index: SkillIndex | None, marker: Marker, fresh: Sequence[Row]) -> SkillIndex | None:
    """The index for `marker`, from `index` and the rows from its newest rowid on (`fresh`), or
    None when those cannot tell what changed (then the whole table is read).

    `fresh` holding the index's newest row, where it was or moved further (by a decision),
    proves no row took a rowid the index has seen (SQLite gives a new row the largest rowid
    plus one, so it reuses a rowid only once that row is gone), so every row inserted or
    decided since (a decision moves the skill to a new rowid) is in `fresh`. Those among an
    author's skills here were moved (decided); the others are new, and the row count growing
    by exactly their number proves nothing was deleted."""
    if index is None:
        # Read from rowid 0 on: the whole table when it is that small.
        return SkillIndex.build(marker, fresh) if len(fresh) == marker.row_count < FRESH_ROWS else None
    if time.monotonic() - index.built > REBUILD_AFTER:
        return None
    known = index.marker
    new = [r for r in fresh if r["row_number"] > known.last_rowid]
    still_there = bool(fresh) and fresh[0]["row_number"] == known.last_rowid and fresh[0]["id"] == index.last_id
    if known.row_count and not still_there and not any(r["id"] == index.last_id for r in new):
        return None  # the index's newest row is gone: its rowid may have been taken again
    if len(fresh) >= FRESH_ROWS:
        return None
    if not new:
        return index if marker == known else None
    moved = [r for r in new if index.knows_own(r)]
    inserted = [r for r in new if not index.knows_own(r)]
    if any(_shared(r) for r in inserted):  # a new master skill (a re-seed): rebuilt, rarely
        return None
    if marker != Marker(known.row_count + len(inserted), new[-1]["row_number"]):
        return None
    return index.updated(marker, new[-1]["id"], inserted, moved)


@dataclass
class Holder:
    """The index of one engine's database (app/domain/skills.py keeps one per engine)."""

    index: SkillIndex | None = None
    builds: int = 0  # full builds so far, for the tests and the benchmark


__all__ = ["FRESH_ROWS", "REBUILD_AFTER", "Entry", "Holder", "Marker", "SkillIndex", "brought_up_to_date", "fold",
           "marker_of"]
