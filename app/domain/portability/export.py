"""Export: everything that is the reader's, read in one batch, as spec §9's document.

Two forms, both spec §9's format:
- encrypted (a saved account's default, for moving between accounts and installations):
  every answer and tool entry exactly as stored (sealed), plus a fresh copy of the data key
  under the account password (`key`, Argon2id stronger than the login's, no pepper) and a
  MAC over the whole file (`mac`): only that password opens it, and no record can be
  removed or swapped unnoticed;
- readable: every value in clear, `"encrypted": false`, and a file name that says
  `unencrypted`. An anonymous workbook has no password, so its export is always this one;
  a saved account gets it after re-entering the password.
Neither ever holds a password hash, an email, a session or a stored key slot. The read is
one batch; opening or copying the values and encoding happen once, off the event loop.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

import anyio.to_thread
import msgspec

from app.db.engine import Engine, Read, Row, Stmt, Work
from app.db.queries import Q
from app.domain import keys
from app.domain.errors import Unauthorized
from app.domain.json_limits import FreeJSON
from app.domain.kdf import run_file_kdf, run_kdf
from app.domain.portability.document import (
    FORMAT_VERSION,
    CustomSkillDoc,
    ExerciseDoc,
    ExportDoc,
    ExportKey,
    ModuleDoc,
    ScoreDoc,
    SettingsDoc,
    ToolDoc,
)
from app.domain.portability.incoming import ANSWERS, TOOLS, workbook_reads
from app.domain.sessions import Principal, ServerKeys
from app.domain.settings import FIELDS
from app.timeutil import now_iso


@dataclass(frozen=True, slots=True)
class Stored:
    """One reader's rows, as stored, from one read batch."""

    settings: Row | None
    scores: Sequence[Row]
    modules: Sequence[Row]
    answers: Sequence[Row]
    tools: Sequence[Row]
    tags: dict[str, list[str]]
    custom_skills: Sequence[Row]
    credentials: Row | None


def stored_work(user_id: str) -> Work[Stored]:
    settings, scores, modules, answers, tools, tags, skills, credentials = yield Read(
        *workbook_reads(user_id), Stmt(Q.password_of_user, (user_id,)))
    tagged: dict[str, list[str]] = {}
    for row in tags.rows:
        tagged.setdefault(row[0], []).append(row[1])
    return Stored(settings.one(), scores.rows, modules.rows, answers.rows, tools.rows, tagged, skills.rows,
                  credentials.one())


def _module_order(key: str) -> tuple[tuple[int, int | str], ...]:
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in key.split("."))


def document_of(stored: Stored, dek: keys.DataKey, *, encrypted: bool, exported_at: str) -> ExportDoc:
    """Spec §9 "1.1": values as stored when `encrypted`, else opened (CPU: run in a thread)."""

    def value(text: str, table: str, row_id: str) -> FreeJSON:
        if encrypted:
            return msgspec.json.decode(text)
        return keys.open_column(dek, text, table=table, row_id=row_id)

    exercises: dict[str, dict[str, ExerciseDoc]] = {}
    for r in stored.answers:
        exercises.setdefault(f"{r['part_id']}.{r['module_id']}", {})[r["full_exercise_id"]] = ExerciseDoc(
            id=r["id"], response_json=value(r["response_json"], ANSWERS, r["id"]), responded_at=r["responded_at"],
            skills=stored.tags.get(r["id"], []))
    completed = {r["module_id"]: r for r in stored.modules}
    modules = {
        key: ModuleDoc(first_completed_at=completed[key]["first_completed_at"] if key in completed else None,
                       last_modified_at=completed[key]["last_modified_at"] if key in completed else None,
                       exercises=exercises.get(key, {}))
        for key in sorted(completed.keys() | exercises.keys(), key=_module_order)
    }
    tools = [
        ToolDoc(id=r["id"], tool_type=r["tool_type"], origin=r["origin"],
                content_json=value(r["content_json"], TOOLS, r["id"]), content_hash=r["content_hash"],
                skills=stored.tags.get(r["id"], []), created_at=r["created_at"], updated_at=r["updated_at"])
        for r in stored.tools
    ]
    settings = None if stored.settings is None else SettingsDoc(**{name: stored.settings[name] for name in FIELDS})
    return ExportDoc(
        version=FORMAT_VERSION,
        exported_at=exported_at,
        encrypted=encrypted,
        settings=settings,
        competency_scores=[ScoreDoc(competency_id=r["competency_id"], score=r["score"], assessed_at=r["assessed_at"])
                           for r in stored.scores],
        modules=modules,
        tool_instances=tools,
        custom_skills=[CustomSkillDoc(id=r["id"], name=r["name"], category=r["category"]) for r in stored.custom_skills],
    )


def _with_mac(document: ExportDoc, dek: keys.DataKey, export_id: str) -> ExportDoc:
    mac = keys.export_mac(dek, export_id, msgspec.to_builtins(document))
    return msgspec.structs.replace(document, mac=mac)


async def sealed(document: ExportDoc, dek: keys.DataKey, password: str) -> ExportDoc:
    """An encrypted export's key copy (Argon2id, in the file-key slot: kdf.run_file_kdf) and MAC."""
    export_id = str(uuid.uuid4())
    slot = await run_file_kdf(keys.wrap_for_export, dek, password=password, export_id=export_id)
    with_key = msgspec.structs.replace(document, export_id=export_id, key=msgspec.convert(slot, ExportKey))
    return await anyio.to_thread.run_sync(_with_mac, with_key, dek, export_id)


class PasswordRequired(Unauthorized):
    """A saved account asked for its export without re-entering its password (401: the
    session is fine, the password is what is missing)."""

    code, title = "password_required", "Password required"


@dataclass(frozen=True, slots=True)
class Exported:
    document: ExportDoc
    filename: str


def filename(exported_at: str, *, encrypted: bool) -> str:
    return f"dreamtree-export-{exported_at[:10]}{'' if encrypted else '-unencrypted'}.json"


async def export(db: Engine, server: ServerKeys, principal: Principal, *, password: str | None,
                 readable: bool = False) -> Exported:
    """The reader's export. A saved account re-enters its password (401 `password_required`
    without one, `invalid_credentials` when wrong): it protects the encrypted file's key copy,
    and it is asked for the readable copy too. An anonymous workbook's export is readable."""
    stored = await db.query(lambda: stored_work(principal.user_id), principal)
    encrypted = not principal.is_anonymous and not readable
    if not principal.is_anonymous:
        if not password:
            raise PasswordRequired("Enter your password to download your workbook.")
        credentials = stored.credentials
        if credentials is None:
            raise Unauthorized("This account has no password to confirm.", code="invalid_credentials")
        try:
            await run_kdf(keys.unlock_with_password, user_id=principal.user_id, password=password,
                          password_hash=credentials["password_hash"],
                          wrapped_data_key=credentials["wrapped_data_key"], pepper=server.pepper)
        except keys.WrongPassword:
            raise Unauthorized("The password is not right.", code="invalid_credentials") from None
    exported_at = now_iso()
    document = await anyio.to_thread.run_sync(
        partial(document_of, stored, principal.dek, encrypted=encrypted, exported_at=exported_at))
    del stored  # the rows as stored are not needed once the document holds the values
    if encrypted:
        assert password is not None
        document = await sealed(document, principal.dek, password)
    return Exported(document, filename(exported_at, encrypted=encrypted))


async def export_account(db: Engine, user_id: str, dek: keys.DataKey, *, password: str) -> ExportDoc:
    """An operator's encrypted export of a saved account whose password was just checked
    (`dreamtree export`): the same read and document, for nobody's session."""
    stored = await db.query(lambda: stored_work(user_id), None)
    exported_at = now_iso()
    document = await anyio.to_thread.run_sync(
        lambda: document_of(stored, dek, encrypted=True, exported_at=exported_at))
    return await sealed(document, dek, password)
