"""Import a file, and merge this device's anonymous workbook at sign-in: the same merge.

Import: the file is checked whole (format, limits, timestamps, ids; for an encrypted file
its password, key and MAC) and opened before anything is read; then one merge work runs
with `split=True`, so on SQLite the writer is held only for the write batch while reading,
sealing and hashing thousands of rows happen on a reader and a worker thread.
"""

from __future__ import annotations

import anyio.to_thread

from app.db.engine import ChangedConcurrently, Engine
from app.domain import keys
from app.domain.errors import Conflict
from app.domain.json_limits import FreeJSON
from app.domain.kdf import run_file_kdf
from app.domain.portability.document import ExportDoc, decode_document, decode_json, unwrap_upload
from app.domain.portability.incoming import Incoming, check_file_key, file_key, open_file
from app.domain.portability.merge import merge_work
from app.domain.portability.report import ImportReport
from app.domain.sessions import Principal
from app.timeutil import now_iso


def _busy() -> Conflict:
    return Conflict("Your workbook kept changing while this was merged; nothing was written. Try again.",
                    code="changed_concurrently")


def _decoded(raw: bytes | FreeJSON) -> tuple[FreeJSON, ExportDoc, Incoming | None]:
    """The file's JSON (parsed here when it comes as bytes), its document, and for a readable
    file already what it brings in (one trip to a worker thread instead of two)."""
    if isinstance(raw, (bytes, bytearray)):
        raw = decode_json(bytes(raw))
    doc = decode_document(raw)
    return raw, doc, None if doc.encrypted or doc.key else open_file(doc, raw, None)


async def open_upload(raw: bytes | FreeJSON, password: str | None) -> Incoming:
    """The file in clear, checked whole; nothing is read or written before (parsing, checks,
    Argon2 and opening all off the event loop)."""
    raw, doc, book = await anyio.to_thread.run_sync(_decoded, raw)
    if book is not None:
        return book
    check_file_key(doc)  # a cost we never write is refused before it waits for the slot
    file_dek = await run_file_kdf(file_key, doc, password)
    return await anyio.to_thread.run_sync(open_file, doc, raw, file_dek)


async def import_into(db: Engine, user_id: str, dek: keys.DataKey, raw: bytes | FreeJSON, *, password: str | None,
                      dry_run: bool, gate: Principal | None) -> ImportReport:
    """Merge an export file (bytes, or its decoded JSON) into reader `user_id`'s workbook,
    under their key. `gate` is their session (None for an operator's command)."""
    book = await open_upload(raw, password)
    stamp = now_iso()
    try:
        return await db.change(lambda: merge_work(user_id, dek, stamp, book, dry_run=dry_run), gate, split=True)
    except ChangedConcurrently:
        raise _busy() from None


async def import_document(db: Engine, principal: Principal, raw: bytes | FreeJSON, *, password: str | None,
                          dry_run: bool) -> ImportReport:
    """POST /api/import: the reader's own workbook receives the file."""
    return await import_into(db, principal.user_id, principal.dek, raw, password=password, dry_run=dry_run,
                             gate=principal)


async def import_upload(db: Engine, principal: Principal, body: FreeJSON, *, header_password: str | None,
                        dry_run: bool) -> ImportReport:
    """POST /api/import's body, decoded: the file as it is (its password from the
    `X-Export-Password` header) or the older wrapper `{"document", "password"}`."""
    document, password = unwrap_upload(body, header_password)
    return await import_document(db, principal, document, password=password, dry_run=dry_run)


async def merge_anonymous(db: Engine, anonymous: Principal, user_id: str, dek: keys.DataKey) -> ImportReport:
    """Sign-in: this device's anonymous workbook merged into the account (re-sealed under the
    account's key) and removed, in one write batch guarded on the anonymous workbook being
    what was read; its session is the gate."""
    stamp = now_iso()
    try:
        return await db.change(
            lambda: merge_work(user_id, dek, stamp, None, dry_run=False, source=(anonymous.user_id, anonymous.dek)),
            anonymous, split=True)
    except ChangedConcurrently:
        raise _busy() from None
