"""The small context every per-kind merge works over: what the receiving reader holds, what
this installation knows, the ids already in use, the report, and the write batch being built.

Everything here comes from the merge's one read batch (`reads`), so the decision is made on
one snapshot and the write batch can guard exactly what it was decided on.
"""

from __future__ import annotations

import re
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import msgspec

from app.db.engine import Result, Row, Stmt, changed, guard_query
from app.db.queries import Q
from app.domain import keys
from app.domain.json_limits import FreeJSON
from app.domain.portability.incoming import Incoming
from app.domain.portability.report import Kind, ReportBuilder
from app.domain.skill_tags import json_chunks

# Row ids a file may keep: what the service itself writes (uuids), and nothing that could
# confuse a reader of the database. Any other id is replaced by a fresh uuid.
_KEEPABLE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")

CHUNK_BYTES = 1_400_000
"""The most JSON one `json_each(?)` parameter of a write carries (D1 takes up to 2 MB a value)."""


@dataclass
class Held:
    """What the receiving reader has, as the merge read it."""

    settings: Row | None
    scores: dict[str, Row]
    modules: dict[str, tuple[str, str]]
    answers: dict[tuple[str, str, str], Row]
    tools: dict[str, Row]
    tool_hashes: set[tuple[str, str]]
    tool_counts: Counter[str]
    tags: dict[str, list[str]]
    custom_skills: int


@dataclass
class Known:
    """What this installation has: places, versions, tools, competencies, personality types,
    the skills the reader may use, and which of the ids the incoming rows propose are taken."""

    places: dict[tuple[str, str, str], Row]
    modules: dict[str, list[Row]]
    versions: set[str]
    tool_types: dict[str, str]  # id -> singular name
    competencies: set[str]
    personality_types: set[str]
    skills: Sequence[Row]
    proposed_rows: set[str]
    taken_rows: set[str]
    proposed_skills: set[str]
    taken_skills: set[str]


def reads(user_id: str, book: Incoming | None) -> list[Stmt]:
    """The receiving reader's side of the merge's one read batch (`Context.build` reads them
    back in this order). The ids the incoming rows propose are checked across both tables of
    every reader: exercise_skills points at answers and tool entries with one id."""
    row_ids = [] if book is None else [i for i in [a.id for a in book.answers] + [t.id for t in book.tools]
                                       if i and _KEEPABLE_ID.fullmatch(i)]
    skill_ids = [] if book is None else [s[0] for s in book.custom_skills if _KEEPABLE_ID.fullmatch(s[0])]
    return [
        Stmt(Q.settings_of_user, (user_id,)),
        Stmt(Q.scores_of_user, (user_id,)),
        Stmt(Q.modules_of_user, (user_id,)),
        Stmt(Q.answers_of_user, (user_id,)),
        Stmt(Q.tool_rows_of_user, (user_id,)),
        Stmt(Q.tags_of_user, (user_id,)),
        Stmt(Q.skills_for_matching, (user_id,)),
        Stmt(Q.places_all),
        Stmt(Q.versions_here),
        Stmt(Q.tool_types_here),
        Stmt(Q.known_competencies),
        Stmt(Q.known_personality_types),
        Stmt(Q.row_ids_taken, (_json(row_ids),)),
        Stmt(Q.skill_ids_taken, (_json(skill_ids),)),
    ]


READS = 14


def _json(items: list[str]) -> str:
    return msgspec.json.encode(items).decode()


def guarded_inserts(user_id: str, rows: Sequence[list[object]], key: Callable[[list[object]], list[object]], *,
                    name: str, insertable: str, insert: str, limit: int) -> list[Stmt]:
    """New rows in chunks of at most `limit` bytes of JSON: per chunk the guard `insertable`
    over those rows' keys (small: ids, places, hashes), the plain `insert`, and `changed`.
    The insert itself reads nothing of its table, so SQLite streams its rows in instead of
    staging them first, and the writer is held for less."""
    statements: list[Stmt] = []
    first = 0
    for chunk, count in json_chunks(rows, limit):
        keys_of = [key(row) for row in rows[first:first + count]]
        first += count
        statements += [guard_query(name, insertable, (user_id, msgspec.json.encode(keys_of).decode())),
                       Stmt(insert, (user_id, chunk)), changed(name, count)]
    return statements


SHARE_GIL_EVERY = 16
"""A merge decides on a worker thread, sealing a value per answer and entry (thousands in a
large import): Python would let it keep the GIL for up to its switch interval (5 ms) at a
time, while the event loop and the writer's thread, with other readers' requests, wait for
it. Every this many sealed values it hands the GIL over at once (bench/README.md: another
reader's save p99 during imports 86–135 → 57–59 ms, the import no slower)."""


@dataclass
class Context:
    user_id: str
    dek: keys.DataKey
    stamp: str
    dry_run: bool
    held: Held
    known: Known
    report: ReportBuilder = field(default_factory=ReportBuilder)
    writes: list[Stmt] = field(default_factory=list)
    skill_map: dict[str, str] = field(default_factory=dict)  # incoming skill id -> skill id here
    usable: set[str] = field(default_factory=set)  # skills the reader may tag
    given: set[str] = field(default_factory=set)  # row and skill ids given out by this merge
    tags: dict[str, list[str]] = field(default_factory=dict)  # row written -> its tags
    retag: list[str] = field(default_factory=list)  # rows of the reader whose tags are replaced
    after: dict[tuple[str, str, str], tuple[str, str]] = field(default_factory=dict)  # place -> (full id, responded_at)
    chunk_bytes: int = field(default_factory=lambda: CHUNK_BYTES)
    sealed: int = 0  # values sealed so far (see seal)

    @classmethod
    def build(cls, user_id: str, dek: keys.DataKey, stamp: str, dry_run: bool, results: list[Result],
              book: Incoming | None) -> Context:
        (settings, scores, modules, answers, tools, tags, skills, places, versions, tool_types, competencies,
         personality_types, taken_rows, taken_skills) = results[:READS]
        tagged: dict[str, list[str]] = {}
        for row in tags.rows:
            tagged.setdefault(row[0], []).append(row[1])
        by_module: dict[str, list[Row]] = {}
        for row in places.rows:
            by_module.setdefault(f"{row['part_id']}.{row['module_id']}", []).append(row)
        held = Held(
            settings=settings.one(),
            scores={r["competency_id"]: r for r in scores.rows},
            modules={r["module_id"]: (r["first_completed_at"], r["last_modified_at"]) for r in modules.rows},
            answers={(r["part_id"], r["module_id"], r["exercise_id"]): r for r in answers.rows},
            tools={r["id"]: r for r in tools.rows},
            tool_hashes={(r["tool_type"], r["content_hash"]) for r in tools.rows},
            tool_counts=Counter(r["tool_type"] for r in tools.rows),
            tags=tagged,
            custom_skills=sum(1 for r in skills.rows if r["is_custom"] and r["mine"]),
        )
        known = Known(
            places={(r["part_id"], r["module_id"], r["exercise_id"]): r for r in places.rows},
            modules=by_module,
            versions=set(versions.column()),
            tool_types={r["id"]: r["singular_name"] for r in tool_types.rows},
            competencies=set(competencies.column()),
            personality_types=set(personality_types.column()),
            skills=skills.rows,
            proposed_rows=set() if book is None else {a.id for a in book.answers if a.id} | {t.id for t in book.tools},
            taken_rows=set(taken_rows.column()),
            proposed_skills=set() if book is None else {s[0] for s in book.custom_skills},
            taken_skills=set(taken_skills.column()),
        )
        ctx = cls(user_id, dek, stamp, dry_run, held, known)
        ctx.usable = {r["id"] for r in skills.rows}
        for place, row in held.answers.items():
            ctx.after[place] = (row["full_exercise_id"], row["responded_at"])
        return ctx

    def row_id(self, wanted: str | None) -> str:
        """The incoming row's own id when no answer or tool entry of anyone has it (the read
        checked) and this merge has not given it out; a fresh one otherwise."""
        if (wanted and wanted in self.known.proposed_rows and wanted not in self.known.taken_rows
                and wanted not in self.given and _KEEPABLE_ID.fullmatch(wanted)):
            self.given.add(wanted)
            return wanted
        return self._fresh()

    def skill_id(self, wanted: str) -> str:
        if (wanted in self.known.proposed_skills and wanted not in self.known.taken_skills
                and wanted not in self.given and _KEEPABLE_ID.fullmatch(wanted)):
            self.given.add(wanted)
            return wanted
        return self._fresh()

    def _fresh(self) -> str:
        fresh = str(uuid.uuid4())
        self.given.add(fresh)
        return fresh

    def skills_of(self, ids: list[str], where: str, kind: Kind) -> list[str]:
        """The tags to keep: skills the reader may use (incoming custom skills mapped to theirs
        here), unique, in order; every other one is left out with a warning."""
        out: list[str] = []
        for skill in ids:
            mapped = self.skill_map.get(skill, skill)
            if mapped in self.usable:
                out.append(mapped)
            else:
                self.report.warn(kind, f"{where}: unknown skill {skill!r} left out")
        return list(dict.fromkeys(out))

    def seal(self, value: FreeJSON, table: str, row_id: str) -> str:
        """The value sealed under the reader's key for that row (nothing on a dry run)."""
        if self.dry_run:
            return ""
        self.sealed += 1
        if self.sealed % SHARE_GIL_EVERY == 0:
            time.sleep(0)  # lets the event loop and the writer's thread take the GIL now
        return keys.seal_column(self.dek, value, table=table, row_id=row_id)
