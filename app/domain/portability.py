"""Export, import and merge: a reader's whole workbook, portable and never duplicated.

One model, three uses. `read_workbook` reads a user's data into a plaintext `Workbook`;
`export_document` writes it as spec §9's format "1.1"; `parse_document` reads such a file
back into a `Workbook`; `merge` folds a `Workbook` into an account. Import and the login merge
of an anonymous workbook (`merge_anonymous`) are the same `merge`.

The file: a claimed account's export keeps every encrypted value exactly as stored and adds a
fresh password-protected copy of the data key (`key`, Argon2id stronger than the login's, no
pepper) and a MAC over the whole file (`mac`), so only the owner's password opens it and no
record can be removed or swapped unnoticed. It never holds a password hash, an email, a
session or a stored key slot. An anonymous export is plaintext and says so (`encrypted:
false`). Each answer carries its row `id` (the encryption binds values to it). The JSON
Schema of the format is docs/export-format.schema.json (generated from the Structs below).

Merge rules (DESIGN.md "Portability"): per exercise the newer `responded_at` wins; modules
take the earliest `first_completed_at` and the latest `last_modified_at`; answers only one
side has are kept; tool instances whose content does not fit their tool's shape
(app/domain/tool_shapes.py, the API's rule) are skipped with a warning, the others are stored
in that shape's normalised form: with the same id they keep the newer `updated_at`, otherwise
the same content (keyed hash) is already there, otherwise they are inserted (under a fresh id
if theirs is taken); competency scores: the newer `assessed_at`; settings: the file's when the
account's were never changed, else the newer side; custom skills match by name and their ids
are remapped everywhere. Unknown exercises, tools, competencies and skills are skipped with
a warning. Everything is re-encrypted under the receiving account's key, in one transaction;
a dry run is the same transaction rolled back.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import msgspec

from app.db.connection import Database
from app.db.queries import Q
from app.domain import keys
from app.domain.errors import Invalid, TooLarge, Unauthorized
from app.domain.json_limits import check_json
from app.domain.kdf import run_file_kdf
from app.domain.settings import FIELDS as SETTINGS_FIELDS
from app.domain.settings import BackgroundColor, Font, TextColor, settings_from_row
from app.domain.skill_tags import replace_tags, tags_of
from app.domain.skills import SkillCategory, clean_name, name_key
from app.domain.tool_shapes import validate_content
from app.timeutil import normalize, now_iso

FORMAT_VERSION = "1.1"
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
MAX_DEPTH = 40  # the file's own structure adds up to 8 levels around a stored value
MAX_ANSWERS = 5_000
MAX_TOOLS = 10_000
MAX_SKILLS = 1_000

Timestamp = Annotated[str, msgspec.Meta(max_length=40)]
Id = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
SkillIds = Annotated[list[Id], msgspec.Meta(max_length=50)]


class Strict(msgspec.Struct, forbid_unknown_fields=True):
    pass


class SettingsDoc(Strict):
    background_color: BackgroundColor = "cream"
    text_color: TextColor = "charcoal"
    font: Font = "system"
    personality_type: Annotated[str, msgspec.Meta(max_length=4)] | None = None


class ScoreDoc(Strict):
    competency_id: Id
    score: Annotated[int, msgspec.Meta(ge=1, le=5)]
    assessed_at: Timestamp


class ExerciseDoc(Strict):
    response_json: Any
    responded_at: Timestamp
    skills: SkillIds = []
    id: Id | None = None


class ModuleDoc(Strict):
    first_completed_at: Timestamp | None = None
    last_modified_at: Timestamp | None = None
    exercises: Annotated[dict[Id, ExerciseDoc], msgspec.Meta(max_length=MAX_ANSWERS)] = {}


class ToolDoc(Strict):
    id: Id
    tool_type: Id
    origin: Id
    content_json: Any
    created_at: Timestamp
    updated_at: Timestamp
    content_hash: Annotated[str, msgspec.Meta(max_length=128)] | None = None
    skills: SkillIds = []


class CustomSkillDoc(Strict):
    id: Id
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=80)]
    category: SkillCategory | None = None


class ExportDoc(Strict):
    """Spec §9, format "1.1", plus the fields an encrypted export needs."""

    version: Literal["1.1"]
    exported_at: Timestamp
    settings: SettingsDoc | None = None
    competency_scores: Annotated[list[ScoreDoc], msgspec.Meta(max_length=200)] = []
    modules: Annotated[dict[Annotated[str, msgspec.Meta(pattern=r"^\d+\.\d+$")], ModuleDoc], msgspec.Meta(max_length=500)] = {}
    tool_instances: Annotated[list[ToolDoc], msgspec.Meta(max_length=MAX_TOOLS)] = []
    custom_skills: Annotated[list[CustomSkillDoc], msgspec.Meta(max_length=MAX_SKILLS)] = []
    encrypted: bool = False
    export_id: Id | None = None
    key: dict[str, Any] | None = None
    mac: Annotated[str, msgspec.Meta(max_length=100)] | None = None


def json_schema() -> dict[str, Any]:
    return msgspec.json.schema(ExportDoc)


# --- the plaintext model -------------------------------------------------------------------


@dataclass
class Answer:
    full_exercise_id: str
    response: Any
    responded_at: str
    skills: list[str]
    id: str | None = None


@dataclass
class Tool:
    id: str
    tool_type: str
    origin: str
    content: Any
    created_at: str
    updated_at: str
    skills: list[str]


@dataclass
class Workbook:
    as_of: str
    settings: dict[str, Any] | None = None
    scores: list[tuple[str, int, str]] = field(default_factory=list)
    modules: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    answers: list[Answer] = field(default_factory=list)
    tools: list[Tool] = field(default_factory=list)
    custom_skills: list[tuple[str, str, str | None]] = field(default_factory=list)


def read_rows(conn: sqlite3.Connection, user_id: str) -> dict[str, Any]:
    """Everything of one user, as stored (one read job)."""
    answers = conn.execute(Q.answers_of_user, (user_id,)).fetchall()
    tools = conn.execute(Q.tools_of_user, (user_id,)).fetchall()
    return {
        "settings": conn.execute(Q.settings_of_user, (user_id,)).fetchone(),
        "scores": conn.execute(Q.scores_of_user, (user_id,)).fetchall(),
        "modules": conn.execute(Q.modules_of_user, (user_id,)).fetchall(),
        "answers": answers,
        "tools": tools,
        "tags": tags_of(conn, [r["id"] for r in answers] + [r["id"] for r in tools]),
        "custom_skills": conn.execute(Q.custom_skills_of_user, (user_id,)).fetchall(),
    }


def workbook_from_rows(rows: dict[str, Any], dek: keys.DataKey, as_of: str) -> Workbook:
    book = Workbook(as_of=as_of)
    s = rows["settings"]
    if s is not None:
        book.settings = settings_from_row(s)
        book.settings["_changed"] = s["created_at"] != s["updated_at"]
        book.settings["_updated_at"] = s["updated_at"]
    book.scores = [(r["competency_id"], r["score"], r["assessed_at"]) for r in rows["scores"]]
    book.modules = {r["module_id"]: (r["first_completed_at"], r["last_modified_at"]) for r in rows["modules"]}
    for r in rows["answers"]:
        response = keys.open_column(dek, r["response_json"], table="exercise_responses", row_id=r["id"])
        book.answers.append(Answer(r["full_exercise_id"], response, r["responded_at"], rows["tags"][r["id"]], r["id"]))
    for r in rows["tools"]:
        content = keys.open_column(dek, r["content_json"], table="tool_instances", row_id=r["id"])
        book.tools.append(Tool(r["id"], r["tool_type"], r["origin"], content, r["created_at"], r["updated_at"], rows["tags"][r["id"]]))
    book.custom_skills = [(r["id"], r["name"], r["category"]) for r in rows["custom_skills"]]
    return book


# --- export ----------------------------------------------------------------------------------


def export_document(rows: dict[str, Any], *, encrypted: bool, dek: keys.DataKey, exported_at: str) -> dict[str, Any]:
    """Spec §9 "1.1". Encrypted values go out as stored when `encrypted`, else opened."""
    modules: dict[str, dict[str, Any]] = {
        r["module_id"]: {"first_completed_at": r["first_completed_at"], "last_modified_at": r["last_modified_at"], "exercises": {}}
        for r in rows["modules"]
    }
    for r in rows["answers"]:
        module = modules.setdefault(f"{r['part_id']}.{r['module_id']}",
                                    {"first_completed_at": None, "last_modified_at": None, "exercises": {}})
        stored = json.loads(r["response_json"])
        value = stored if encrypted else keys.open_document(dek, stored, table="exercise_responses", row_id=r["id"])
        module["exercises"][r["full_exercise_id"]] = {
            "id": r["id"], "response_json": value, "responded_at": r["responded_at"], "skills": rows["tags"][r["id"]]}
    tools = []
    for r in rows["tools"]:
        stored = json.loads(r["content_json"])
        value = stored if encrypted else keys.open_document(dek, stored, table="tool_instances", row_id=r["id"])
        tools.append({"id": r["id"], "tool_type": r["tool_type"], "origin": r["origin"], "content_json": value,
                      "content_hash": r["content_hash"], "skills": rows["tags"][r["id"]],
                      "created_at": r["created_at"], "updated_at": r["updated_at"]})
    s = rows["settings"]
    return {
        "version": FORMAT_VERSION,
        "exported_at": exported_at,
        "encrypted": encrypted,
        "settings": None if s is None else settings_from_row(s),
        "competency_scores": [{"competency_id": r["competency_id"], "score": r["score"], "assessed_at": r["assessed_at"]}
                              for r in rows["scores"]],
        "modules": dict(sorted(modules.items(), key=lambda kv: tuple(int(p) for p in kv[0].split(".")))),
        "tool_instances": tools,
        "custom_skills": [{"id": r["id"], "name": r["name"], "category": r["category"]} for r in rows["custom_skills"]],
    }


def seal_export(document: dict[str, Any], dek: keys.DataKey, slot: dict[str, Any], export_id: str) -> dict[str, Any]:
    document = {**document, "export_id": export_id, "key": slot}
    document["mac"] = keys.export_mac(dek, export_id, document)
    return document


# --- import ----------------------------------------------------------------------------------


def decode_document(raw: bytes | Any) -> ExportDoc:
    """Strict validation before anything else: shape, limits, depth, timestamps."""
    if isinstance(raw, (bytes, bytearray)):
        if len(raw) > MAX_DOCUMENT_BYTES:
            raise TooLarge(f"An import file can be at most {MAX_DOCUMENT_BYTES // (1024 * 1024)} MiB.", code="import_too_large")
        try:
            raw = msgspec.json.decode(raw)
        except msgspec.DecodeError as exc:
            raise Invalid(f"The file is not valid JSON: {exc}", code="import_invalid") from None
    check_json(raw, what="The file", code="import_invalid", max_depth=MAX_DEPTH)
    if isinstance(raw, dict) and raw.get("version") not in (None, FORMAT_VERSION):
        raise Invalid(f"Unsupported export format version {raw.get('version')!r}; this installation reads {FORMAT_VERSION!r}.",
                      code="import_invalid")
    try:
        doc = msgspec.convert(raw, ExportDoc)
    except msgspec.ValidationError as exc:
        raise Invalid(f"The file does not match the export format: {exc}", code="import_invalid") from None
    answers = sum(len(m.exercises) for m in doc.modules.values())
    if answers > MAX_ANSWERS:
        raise Invalid(f"The file holds more than {MAX_ANSWERS} answers.", code="import_invalid")
    try:
        doc.exported_at = normalize(doc.exported_at)
        for score in doc.competency_scores:
            score.assessed_at = normalize(score.assessed_at)
        for module in doc.modules.values():
            module.first_completed_at = normalize(module.first_completed_at) if module.first_completed_at else None
            module.last_modified_at = normalize(module.last_modified_at) if module.last_modified_at else None
            for exercise in module.exercises.values():
                exercise.responded_at = normalize(exercise.responded_at)
        for tool in doc.tool_instances:
            tool.created_at, tool.updated_at = normalize(tool.created_at), normalize(tool.updated_at)
    except ValueError as exc:
        raise Invalid(f"A timestamp in the file is not a valid ISO 8601 time with a zone: {exc}", code="import_invalid") from None
    return doc


KDF_REFUSED = ("The file's key names an Argon2 cost this service never writes; only files exported by "
               "DreamTree can be imported.")


def check_file_key(doc: ExportDoc) -> None:
    """The file key's Argon2 cost, refused (without hashing) before the import waits for a slot."""
    try:
        keys.check_export_slot(doc.key)
    except keys.BadParameters:
        raise Invalid(KDF_REFUSED, code="import_kdf_unsupported") from None
    except keys.SealBroken:
        raise Invalid("The file's key is malformed.", code="import_invalid") from None


def open_document_file(doc: ExportDoc, raw: Any, password: str | None) -> Workbook:
    """The plaintext workbook of a validated file; for an encrypted file the password unwraps
    its key, the MAC is checked, and every value is opened (slow part: run in a thread)."""
    old_dek: keys.DataKey | None = None
    if doc.encrypted or doc.key is not None:
        if doc.key is None or doc.export_id is None or doc.mac is None:
            raise Invalid("The file says it is encrypted but has no key, export_id or mac.", code="import_invalid")
        if not password:
            raise Unauthorized("This file is protected: give the password of the account that exported it.",
                               code="invalid_credentials")
        try:
            old_dek = keys.unwrap_export(doc.key, password=password, export_id=doc.export_id)
        except keys.BadParameters:
            raise Invalid(KDF_REFUSED, code="import_kdf_unsupported") from None
        except keys.SealBroken:
            raise Invalid("The file's key is malformed.", code="import_invalid") from None
        except keys.WrongPassword:
            raise Unauthorized("The password does not open this file.", code="invalid_credentials") from None
        without_mac = {k: v for k, v in raw.items() if k != "mac"}
        try:
            keys.verify_export_mac(old_dek, doc.export_id, without_mac, doc.mac)
        except keys.SealBroken:
            raise Invalid("The file was changed after it was exported (its MAC does not match).", code="import_invalid") from None

    def opened(value: Any, table: str, row_id: str | None) -> Any:
        if old_dek is None:
            return value
        if row_id is None:
            raise Invalid("An encrypted answer in the file has no id.", code="import_invalid")
        try:
            return keys.open_document(old_dek, value, table=table, row_id=row_id)
        except keys.CryptoFailure:
            raise Invalid("An encrypted value in the file does not open (tampered or moved).", code="import_invalid") from None

    book = Workbook(as_of=doc.exported_at)
    if doc.settings is not None:
        book.settings = msgspec.to_builtins(doc.settings)
    book.scores = [(s.competency_id, s.score, s.assessed_at) for s in doc.competency_scores]
    for module_id, module in doc.modules.items():
        if module.first_completed_at or module.last_modified_at:
            book.modules[module_id] = (module.first_completed_at, module.last_modified_at or module.first_completed_at)
        for full_id, exercise in module.exercises.items():
            book.answers.append(Answer(full_id, opened(exercise.response_json, "exercise_responses", exercise.id),
                                       exercise.responded_at, list(exercise.skills), exercise.id))
    for t in doc.tool_instances:
        book.tools.append(Tool(t.id, t.tool_type, t.origin, opened(t.content_json, "tool_instances", t.id),
                               t.created_at, t.updated_at, list(t.skills)))
    book.custom_skills = [(s.id, s.name, s.category) for s in doc.custom_skills]
    return book


# --- merge -----------------------------------------------------------------------------------

KINDS = ("settings", "competency_scores", "modules", "exercises", "tool_instances", "custom_skills")


@dataclass
class Report:
    dry_run: bool
    counts: dict[str, dict[str, int]] = field(
        default_factory=lambda: {k: {"inserted": 0, "updated": 0, "unchanged": 0, "skipped": 0} for k in KINDS})
    warnings: list[str] = field(default_factory=list)

    def add(self, kind: str, outcome: str) -> None:
        self.counts[kind][outcome] += 1

    def as_dict(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "counts": self.counts, "warnings": self.warnings}


class _RollBack(Exception):
    def __init__(self, report: Report) -> None:
        self.report = report


def _place(full_id: str) -> tuple[str, str, str] | None:
    parts = full_id.split(".")
    if len(parts) != 4 or not parts[3].startswith("v"):
        return None
    return parts[0], parts[1], parts[2]


def _fresh_id(conn: sqlite3.Connection, query: str, wanted: str | None) -> str:
    if wanted and not conn.execute(query, (wanted,)).fetchone()[0]:
        return wanted
    return str(uuid.uuid4())


def merge(conn: sqlite3.Connection, user_id: str, dek: keys.DataKey, book: Workbook, report: Report) -> None:
    """Fold `book` into `user_id`'s account, inside the caller's transaction."""
    stamp = now_iso()
    target = workbook_from_rows(read_rows(conn, user_id), dek, stamp)

    # Custom skills first: every skill reference below goes through this map.
    skill_map: dict[str, str] = {}
    by_name = {name_key(r["name"]): r["id"] for r in conn.execute(Q.skills_for_matching, (user_id,))}
    known_ids = set(by_name.values())
    for skill_id, name, category in book.custom_skills:
        match = by_name.get(name_key(name))
        if match:
            skill_map[skill_id] = match
            report.add("custom_skills", "unchanged")
            continue
        new_id = _fresh_id(conn, Q.id_taken_skill, skill_id)
        conn.execute(Q.insert_custom_skill, (new_id, clean_name(name), category, user_id, stamp))
        skill_map[skill_id] = by_name[name_key(name)] = new_id
        known_ids.add(new_id)
        report.add("custom_skills", "inserted")

    def skills_of(ids: list[str], where: str) -> list[str]:
        out = []
        for s in ids:
            mapped = skill_map.get(s, s)
            if mapped in known_ids:
                out.append(mapped)
            else:
                report.warnings.append(f"{where}: unknown skill {s!r} skipped")
        return list(dict.fromkeys(out))

    # Settings.
    if book.settings is not None:
        wanted = {k: book.settings.get(k) for k in SETTINGS_FIELDS}
        if wanted["personality_type"] is not None and wanted["personality_type"] not in {
                r[0] for r in conn.execute(Q.known_personality_types)}:
            report.warnings.append(f"settings: unknown personality type {wanted['personality_type']!r} skipped")
            wanted["personality_type"] = target.settings["personality_type"] if target.settings else None
        current = {k: target.settings[k] for k in wanted} if target.settings else None
        theirs_newer = target.settings is None or not target.settings["_changed"] or book.as_of > target.settings["_updated_at"]
        if current == wanted:
            report.add("settings", "unchanged")
        elif theirs_newer:
            conn.execute(Q.update_settings_all, (wanted["background_color"], wanted["text_color"], wanted["font"],
                                                 wanted["personality_type"], stamp, user_id))
            report.add("settings", "updated")
        else:
            report.add("settings", "unchanged")

    # Competency scores: the newer assessment wins.
    competencies = {r[0] for r in conn.execute(Q.known_competencies)}
    mine_scores = {c: (s, at) for c, s, at in target.scores}
    for competency_id, score, assessed_at in book.scores:
        if competency_id not in competencies:
            report.warnings.append(f"competency_scores: unknown competency {competency_id!r} skipped")
            report.add("competency_scores", "skipped")
            continue
        held_score = mine_scores.get(competency_id)
        if held_score is not None and (held_score[1] >= assessed_at):
            report.add("competency_scores", "unchanged")
            continue
        conn.execute(Q.upsert_score, (str(uuid.uuid4()), user_id, competency_id, score, assessed_at))
        report.add("competency_scores", "inserted" if held_score is None else "updated")

    # Answers: per exercise place, the newer responded_at wins.
    places = {(r["part_id"], r["module_id"], r["exercise_id"]): r for r in conn.execute(Q.places_all)}
    mine_answers = {}
    for a in target.answers:
        p = _place(a.full_exercise_id)
        if p:
            mine_answers[p] = a
    touched_modules: dict[str, str] = {}
    for a in book.answers:
        p = _place(a.full_exercise_id)
        if p is None or p not in places:
            report.warnings.append(f"exercises: unknown exercise {a.full_exercise_id!r} skipped")
            report.add("exercises", "skipped")
            continue
        held_answer = mine_answers.get(p)
        skills = skills_of(a.skills, f"exercise {a.full_exercise_id}")
        if held_answer is not None and (held_answer.responded_at > a.responded_at or (
                held_answer.responded_at == a.responded_at and held_answer.response == a.response
                and held_answer.skills == skills)):
            report.add("exercises", "unchanged")
            continue
        if held_answer is not None and held_answer.responded_at == a.responded_at and held_answer.response != a.response:
            report.warnings.append(f"exercises: {a.full_exercise_id} differs with the same time; the account's answer was kept")
            report.add("exercises", "unchanged")
            continue
        if held_answer is not None and held_answer.id is not None:  # the account's answers always carry their id
            row_id = held_answer.id
        else:
            row_id = _fresh_id(conn, Q.id_taken_response, a.id)
        sealed = keys.seal_column(dek, a.response, table="exercise_responses", row_id=row_id)
        part, module, exercise = p
        version = int(a.full_exercise_id.rsplit(".v", 1)[1])
        if held_answer is not None:
            conn.execute(Q.update_response_row, (version, a.full_exercise_id, sealed, a.responded_at, row_id, user_id))
            report.add("exercises", "updated")
        else:
            conn.execute(Q.insert_response, (row_id, user_id, part, module, exercise, version, a.full_exercise_id,
                                             sealed, a.responded_at))
            report.add("exercises", "inserted")
        replace_tags(conn, row_id, skills, stamp)
        key = f"{part}.{module}"
        touched_modules[key] = max(touched_modules.get(key, ""), a.responded_at)

    # Modules: earliest first completion, latest modification; a module that the merge
    # completed gets its row now.
    mine_modules = dict(target.modules)
    for module_id, (first, last) in book.modules.items():
        if _module_known(module_id, places) is False:
            report.add("modules", "skipped")
            continue
        held_module = mine_modules.get(module_id)
        if held_module is None:
            merged = (first, last)
        else:
            merged = (min(x for x in (held_module[0], first) if x) if (held_module[0] or first) else None,
                      max(x for x in (held_module[1], last) if x) if (held_module[1] or last) else None)
        if held_module == merged or merged[0] is None:
            report.add("modules", "unchanged")
            continue
        conn.execute(Q.upsert_module, (user_id, module_id, merged[0], merged[1] or merged[0]))
        mine_modules[module_id] = merged
        report.add("modules", "inserted" if held_module is None else "updated")
    for row in conn.execute(Q.required_modules_done, (user_id,)).fetchall():
        module_id = row[0]
        if module_id not in mine_modules and module_id in touched_modules:
            conn.execute(Q.upsert_module, (user_id, module_id, touched_modules[module_id], touched_modules[module_id]))
            mine_modules[module_id] = (touched_modules[module_id], touched_modules[module_id])
            report.add("modules", "inserted")
        elif module_id in touched_modules and mine_modules.get(module_id):
            first, last = mine_modules[module_id]
            if last is None or touched_modules[module_id] > last:
                conn.execute(Q.upsert_module, (user_id, module_id, first, touched_modules[module_id]))

    # Tool instances.
    tool_types = {r[0] for r in conn.execute(Q.known_tool_types)}
    mine_tools = {t.id: t for t in target.tools}
    mine_hashes = {keys.content_hash(dek, t.content): t.id for t in target.tools}
    for t in book.tools:
        if t.tool_type not in tool_types:
            report.warnings.append(f"tool_instances: unknown tool type {t.tool_type!r} skipped")
            report.add("tool_instances", "skipped")
            continue
        try:
            # The API's own rule, so an import can hold nothing the API would refuse.
            content = validate_content(t.tool_type, t.content)
        except Invalid as exc:
            report.warnings.append(f"tool_instances: {t.id} skipped: {exc.detail}")
            report.add("tool_instances", "skipped")
            continue
        skills = skills_of(t.skills, f"tool instance {t.id}")
        content_hash = keys.content_hash(dek, content)
        held_tool = mine_tools.get(t.id)
        if held_tool is not None:
            if held_tool.updated_at >= t.updated_at:
                report.add("tool_instances", "unchanged")
                continue
            sealed = keys.seal_column(dek, content, table="tool_instances", row_id=t.id)
            conn.execute(Q.update_tool_row, (t.tool_type, t.origin, sealed, content_hash, t.created_at, t.updated_at, t.id, user_id))
            replace_tags(conn, t.id, skills, stamp)
            report.add("tool_instances", "updated")
            continue
        if content_hash in mine_hashes:
            report.add("tool_instances", "unchanged")
            continue
        row_id = _fresh_id(conn, Q.id_taken_tool, t.id)
        sealed = keys.seal_column(dek, content, table="tool_instances", row_id=row_id)
        conn.execute(Q.insert_tool_row, (row_id, user_id, t.tool_type, t.origin, sealed, content_hash, t.created_at, t.updated_at))
        replace_tags(conn, row_id, skills, stamp)
        mine_hashes[content_hash] = row_id
        report.add("tool_instances", "inserted")

    complete = conn.execute(Q.workbook_required_left, (user_id,)).fetchone()[0] == 0
    conn.execute(Q.set_workbook_complete, (int(complete), stamp, user_id, int(complete)))


def _module_known(module_id: str, places: dict[tuple[str, str, str], Any]) -> bool:
    part, _, module = module_id.partition(".")
    return any(p[0] == part and p[1] == module for p in places)


# --- the service functions ------------------------------------------------------------------


async def export(db: Database, user_id: str, dek: keys.DataKey, *, encrypted: bool,
                 password: str | None = None) -> dict[str, Any]:
    """The reader's export; for a claimed account `password` protects the file's key copy."""
    rows = await db.read(lambda c: read_rows(c, user_id))
    document = export_document(rows, encrypted=encrypted, dek=dek, exported_at=now_iso())
    if not encrypted:
        return document
    export_id = str(uuid.uuid4())
    slot = await run_file_kdf(keys.wrap_for_export, dek, password=password or "", export_id=export_id)
    return seal_export(document, dek, slot, export_id)


async def import_document(db: Database, user_id: str, dek: keys.DataKey, raw: Any, *, password: str | None,
                          dry_run: bool) -> Report:
    doc = decode_document(raw)
    if doc.key is None:
        book = open_document_file(doc, raw, None)
    else:
        check_file_key(doc)
        book = await run_file_kdf(open_document_file, doc, raw, password)
    return await merge_into(db, user_id, dek, book, dry_run=dry_run)


async def merge_into(db: Database, user_id: str, dek: keys.DataKey, book: Workbook, *, dry_run: bool,
                     after: Any = None) -> Report:
    """merge() in one write transaction; a dry run rolls the same transaction back."""
    report = Report(dry_run=dry_run)

    def write(conn: sqlite3.Connection) -> Report:
        merge(conn, user_id, dek, book, report)
        if after is not None:
            after(conn)
        if dry_run:
            raise _RollBack(report)
        return report

    try:
        return await db.write(write)
    except _RollBack as done:
        return done.report
