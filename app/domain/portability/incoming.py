"""What a merge brings in, in clear: from an export file, or from this device's anonymous
workbook at sign-in. One model, so import and the sign-in merge are the same merge.

Opening an encrypted file: the password unwraps the file's key (Argon2id, bounded by
keys.py), the MAC over the whole file is checked, then every value is opened. All of it
happens before the merge reads anything; a file that fails any step changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from app.db.engine import Row, Stmt
from app.db.queries import Q
from app.domain import keys
from app.domain.errors import Invalid, Unauthorized
from app.domain.json_limits import FreeJSON
from app.domain.portability.document import ExportDoc, ExportKey
from app.domain.settings import FIELDS
from app.domain.workbook import check_response_size

ANSWERS = "exercise_responses"
TOOLS = "tool_instances"


@dataclass(slots=True)
class Answer:
    full_exercise_id: str
    response: FreeJSON
    responded_at: str
    skills: list[str]
    id: str | None = None


@dataclass(slots=True)
class Tool:
    id: str
    tool_type: str
    origin: str
    content: FreeJSON
    created_at: str
    updated_at: str
    skills: list[str]


@dataclass
class Incoming:
    """A workbook in clear, as of `as_of` (the file's export time, or now)."""

    as_of: str
    settings: dict[str, str | None] | None = None
    settings_at: str = ""  # when those settings were chosen
    scores: list[tuple[str, int, str]] = field(default_factory=list)
    modules: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)  # completions claimed
    answers: list[Answer] = field(default_factory=list)
    tools: list[Tool] = field(default_factory=list)
    custom_skills: list[tuple[str, str, str | None]] = field(default_factory=list)


def _bad(detail: str) -> Invalid:
    return Invalid(detail, code="import_invalid")


KDF_REFUSED = ("The file's key names an Argon2 cost this service never writes; only files exported by "
               "DreamTree can be imported.")


def _slot(doc: ExportDoc) -> dict[str, object]:
    assert isinstance(doc.key, ExportKey)
    return {"t": doc.key.t, "kid": doc.key.kid, "aead": doc.key.aead, "nonce": doc.key.nonce, "ct": doc.key.ct,
            "kdf": {"alg": doc.key.kdf.alg, "v": doc.key.kdf.v, "m": doc.key.kdf.m, "t": doc.key.kdf.t,
                    "p": doc.key.kdf.p, "n": doc.key.kdf.n, "salt": doc.key.kdf.salt}}


def check_file_key(doc: ExportDoc) -> None:
    """An encrypted file's key: complete, and at an Argon2 cost this service writes. Checked
    (without hashing) before the import waits for the file-key slot, so a file naming a huge
    cost is refused at once and never occupies it."""
    if not doc.key or not doc.export_id or not doc.mac:
        raise _bad("The file says it is encrypted but has no key, export_id or mac.")
    try:
        keys.check_export_slot(_slot(doc))
    except keys.BadParameters:
        raise Invalid(KDF_REFUSED, code="import_kdf_unsupported") from None
    except keys.SealBroken:
        raise _bad("The file's key is malformed.") from None


def file_key(doc: ExportDoc, password: str | None) -> keys.DataKey | None:
    """The data key an encrypted file was sealed under (Argon2id: run it through
    kdf.run_file_kdf, after `check_file_key`), or None for a readable file."""
    if not (doc.encrypted or doc.key):
        return None
    check_file_key(doc)
    assert isinstance(doc.export_id, str)
    if not password:
        raise Unauthorized("This file is protected: give the password of the account that exported it.",
                           code="invalid_credentials")
    try:
        return keys.unwrap_export(_slot(doc), password=password, export_id=doc.export_id)
    except keys.BadParameters:
        raise Invalid(KDF_REFUSED, code="import_kdf_unsupported") from None
    except keys.SealBroken:
        raise _bad("The file's key is malformed.") from None
    except keys.WrongPassword:
        raise Unauthorized("The password does not open this file.", code="invalid_credentials") from None


def open_file(doc: ExportDoc, raw: FreeJSON, file_dek: keys.DataKey | None) -> Incoming:
    """The file in clear: its MAC checked and its values opened when it is encrypted, and
    every answer held to the API's rules for an answer (size, JSON limits): a file with an
    answer the API would refuse is refused whole, naming the exercise (CPU: run it in a thread)."""
    if file_dek is not None:
        _check_mac(doc, raw, file_dek)
    opened = _opener(file_dek)
    book = Incoming(as_of=doc.exported_at)
    if doc.settings is not None:
        s = doc.settings
        book.settings = {"background_color": s.background_color, "text_color": s.text_color, "font": s.font,
                         "personality_type": s.personality_type}
        book.settings_at = doc.exported_at
    book.scores = [(s.competency_id, s.score, s.assessed_at) for s in doc.competency_scores]
    _bring_modules(book, doc, opened)
    for t in doc.tool_instances:
        content = opened(t.content_json, TOOLS, t.id, f"tool entry {t.id}")
        book.tools.append(Tool(t.id, t.tool_type, t.origin, content, t.created_at, t.updated_at, list(t.skills)))
    book.custom_skills = [(s.id, s.name, s.category) for s in doc.custom_skills]
    return book


def _check_mac(doc: ExportDoc, raw: FreeJSON, file_dek: keys.DataKey) -> None:
    """The MAC over the whole file (all but the MAC itself), under the file's key."""
    assert isinstance(raw, dict) and doc.export_id and doc.mac
    try:
        keys.verify_export_mac(file_dek, doc.export_id, {k: v for k, v in raw.items() if k != "mac"}, doc.mac)
    except keys.SealBroken:
        raise _bad("The file was changed after it was exported (its MAC does not match).") from None


Opener = Callable[[FreeJSON, str, "str | None", str], FreeJSON]


def _opener(file_dek: keys.DataKey | None) -> Opener:
    """How a value of the file is read: as it is in a readable file, opened under the file's key
    in an encrypted one (where it must carry the id it was sealed under)."""

    def opened(value: FreeJSON, table: str, row_id: str | None, where: str) -> FreeJSON:
        if file_dek is None:
            return value
        if row_id is None:
            raise _bad(f"{where}: an encrypted value in the file has no id.")
        try:
            return keys.open_document(file_dek, value, table=table, row_id=row_id)
        except (keys.CryptoFailure, ValueError):
            raise _bad(f"{where}: an encrypted value in the file does not open (tampered or moved).") from None

    return opened


def _bring_modules(book: Incoming, doc: ExportDoc, opened: Opener) -> None:
    """The file's module completions and answers, each answer held to the API's size rules."""
    for module_id, module in doc.modules.items():
        if module.first_completed_at or module.last_modified_at:
            book.modules[module_id] = (module.first_completed_at, module.last_modified_at)
        for full_id, exercise in module.exercises.items():
            response = opened(exercise.response_json, ANSWERS, exercise.id, full_id)
            try:
                check_response_size(response)
            except Invalid as exc:
                raise Invalid(f"{full_id}: {exc.detail}", code=exc.instance_code) from None
            book.answers.append(Answer(full_id, response, exercise.responded_at, list(exercise.skills), exercise.id))


def workbook_reads(user_id: str) -> list[Stmt]:
    """The reads of a reader's stored workbook, in the order `from_rows` takes them (the export
    reads the same): settings, scores, modules, answers, tools, tags, custom skills."""
    return [
        Stmt(Q.settings_of_user, (user_id,)),
        Stmt(Q.scores_of_user, (user_id,)),
        Stmt(Q.modules_of_user, (user_id,)),
        Stmt(Q.answers_of_user, (user_id,)),
        Stmt(Q.tools_of_user, (user_id,)),
        Stmt(Q.tags_of_user, (user_id,)),
        Stmt(Q.custom_skills_of_user, (user_id,)),
    ]


def from_rows(dek: keys.DataKey, as_of: str, *, settings: Row | None, scores: Sequence[Row], modules: Sequence[Row],
              answers: Sequence[Row], tools: Sequence[Row], tags: Sequence[Row], custom_skills: Sequence[Row]) -> Incoming:
    """A reader's stored workbook in clear (this device's anonymous workbook at sign-in)."""
    tagged: dict[str, list[str]] = {}
    for row in tags:
        tagged.setdefault(row[0], []).append(row[1])
    book = Incoming(as_of=as_of)
    if settings is not None and settings["created_at"] != settings["updated_at"]:
        book.settings = {name: settings[name] for name in FIELDS}  # untouched defaults say nothing
        book.settings_at = settings["updated_at"]
    book.scores = [(r["competency_id"], r["score"], r["assessed_at"]) for r in scores]
    book.modules = {r["module_id"]: (r["first_completed_at"], r["last_modified_at"]) for r in modules}
    for r in answers:
        response = keys.open_column(dek, r["response_json"], table=ANSWERS, row_id=r["id"])
        book.answers.append(Answer(r["full_exercise_id"], response, r["responded_at"], tagged.get(r["id"], []), r["id"]))
    for r in tools:
        content = keys.open_column(dek, r["content_json"], table=TOOLS, row_id=r["id"])
        book.tools.append(Tool(r["id"], r["tool_type"], r["origin"], content, r["created_at"], r["updated_at"],
                               tagged.get(r["id"], [])))
    book.custom_skills = [(r["id"], r["name"], r["category"]) for r in custom_skills]
    return book
