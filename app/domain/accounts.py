"""Accounts: claim an anonymous workbook, sign in, change or recover the password, devices, deletion.

Every password operation runs Argon2id in a worker thread, at most two at a time (each takes
64 MiB and ~150 ms of a core), with a queue timeout that answers 503 instead of piling up.
Database writes happen after the slow work, each flow in one short transaction.
"""

from __future__ import annotations

import re
import sqlite3
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import msgspec

from app import timeutil
from app.db.connection import Database, run_in_transaction
from app.db.queries import Q
from app.domain import keys, portability
from app.domain.errors import Conflict, Forbidden, Invalid, NotFound, Unauthorized
from app.domain.kdf import run_kdf
from app.domain.passwords import check_password
from app.domain.sessions import IssuedCookie, Principal, ServerKeys, open_session
from app.domain.settings import settings_from_row
from app.domain.throttle import Throttle
from app.timeutil import iso, now_iso

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
INVALID_CREDENTIALS = "The email or password is not right."


def normalize_email(email: str) -> str:
    """Emails are the login name: trimmed and lower-cased, then checked for a plausible shape."""
    value = email.strip().lower()
    if len(value) > 254 or not _EMAIL.match(value):
        raise Invalid("Enter an email address like name@example.com.", code="invalid_email")
    return value


@dataclass(frozen=True)
class Me:
    id: str
    is_anonymous: bool
    workbook_complete: bool
    email: str | None
    created_at: str
    settings: dict[str, Any]


def me_from_row(row: sqlite3.Row) -> Me:
    return Me(
        id=row["id"],
        is_anonymous=bool(row["is_anonymous"]),
        workbook_complete=bool(row["workbook_complete"]),
        email=row["email"],
        created_at=row["created_at"],
        settings=settings_from_row(row),
    )


def read_me(conn: sqlite3.Connection, user_id: str) -> Me:
    row = conn.execute(Q.me, (user_id,)).fetchone()
    if row is None:
        raise Unauthorized("This account no longer exists.", code="invalid_session")
    return me_from_row(row)


async def me(db: Database, principal: Principal) -> Me:
    return await db.read(lambda c: read_me(c, principal.user_id))


# --- claim ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claimed:
    me: Me
    recovery_code: str
    cookie: IssuedCookie


async def claim(db: Database, server: ServerKeys, principal: Principal, *, email: str, password: str) -> Claimed:
    """Anonymous → claimed: email + password wrap the EXISTING data key (no re-encryption),
    a recovery code is made and shown once, and the session id rotates. One transaction."""
    if not principal.is_anonymous:
        raise Conflict("This workbook is already saved to an account.", code="already_claimed")
    address = normalize_email(email)
    secret = check_password(password, email=address)
    if await db.read(lambda c: c.execute(Q.email_taken, (address,)).fetchone()[0]):
        raise Conflict("An account with this email already exists; sign in instead.", code="email_taken")
    password_hash, wrapped, code = await run_kdf(
        keys.claim_keys, principal.dek, user_id=principal.user_id, password=secret,
        pepper=server.pepper, pepper_id=server.pepper_id, params=server.argon2,
    )
    stamp = now_iso()

    def write(conn: sqlite3.Connection) -> tuple[Me, IssuedCookie]:
        if conn.execute(Q.claim_user, (stamp, principal.user_id)).rowcount != 1:
            raise Conflict("This workbook is already saved to an account.", code="already_claimed")
        try:
            conn.execute(Q.insert_email, (str(uuid.uuid4()), principal.user_id, address, stamp))
        except sqlite3.IntegrityError:
            raise Conflict("An account with this email already exists; sign in instead.", code="email_taken") from None
        conn.execute(Q.insert_auth, (str(uuid.uuid4()), principal.user_id, password_hash, wrapped, stamp, stamp))
        conn.execute(Q.delete_session, (principal.session_id,))
        issued = open_session(conn, server, principal.user_id, principal.dek, is_anonymous=False, stamp=stamp)
        return read_me(conn, principal.user_id), issued

    account, issued = await db.write(write)
    return Claimed(account, code, issued)


# --- sign in --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignedIn:
    me: Me
    cookie: IssuedCookie
    principal: Principal
    merge: dict[str, Any] | None  # the merge report, when this device's anonymous workbook was merged


async def verify_credentials(db: Database, server: ServerKeys, throttle: Throttle, email: str, password: str) -> tuple[str, keys.DataKey]:
    """(user_id, data key) for a right email and password; otherwise the one generic 401 after
    the same Argon2 work, so neither the answer nor its timing says which emails exist."""
    try:
        address = normalize_email(email)
    except Invalid:
        address = email.strip().lower()
    account_key = throttle.account_key(address)
    throttle.check_login(account_key)
    row = await db.read(lambda c: c.execute(Q.credentials_by_email, (address,)).fetchone())
    if row is None:
        await run_kdf(keys.dummy_password_work, password, server.argon2, server.pepper)
        throttle.login_failed(account_key)
        raise Unauthorized(INVALID_CREDENTIALS, code="invalid_credentials")
    try:
        dek = await run_kdf(
            keys.unlock_with_password, user_id=row["user_id"], password=password,
            password_hash=row["password_hash"], wrapped_data_key=row["wrapped_data_key"], pepper=server.pepper,
        )
    except keys.WrongPassword:
        throttle.login_failed(account_key)
        raise Unauthorized(INVALID_CREDENTIALS, code="invalid_credentials") from None
    throttle.login_succeeded(account_key)
    if keys.needs_rehash(row["password_hash"], server.argon2, pepper_id=server.pepper_id):
        await _rewrap(db, server, row["user_id"], dek, password, row["wrapped_data_key"])
    return row["user_id"], dek


async def _rewrap(db: Database, server: ServerKeys, user_id: str, dek: keys.DataKey, password: str, wrapped: str) -> None:
    """Upgrade the Argon2 parameters (or pepper) at sign-in, while the password is at hand."""
    new_hash, new_wrapped = await run_kdf(
        keys.change_password, dek, user_id=user_id, new_password=password, pepper=server.pepper,
        pepper_id=server.pepper_id, wrapped_data_key=wrapped, params=server.argon2,
    )
    stamp = now_iso()
    await db.write(lambda c: c.execute(Q.update_credentials, (new_hash, new_wrapped, stamp, user_id)))


async def anonymous_has_answers(db: Database, principal: Principal | None) -> bool:
    if principal is None or not principal.is_anonymous:
        return False
    return bool(await db.read(lambda c: c.execute(Q.user_has_answers, (principal.user_id,)).fetchone()[0]))


async def sign_in(
    db: Database, server: ServerKeys, throttle: Throttle, *, email: str, password: str,
    current: Principal | None, merge_anonymous: bool,
) -> SignedIn:
    """Sign in on this device: a new session for the account. The anonymous workbook this
    device held is merged into the account first when asked (the same merge as import, under
    the account's key, in one write batch that also removes it), else removed."""
    user_id, dek = await verify_credentials(db, server, throttle, email, password)
    anonymous = current if current and current.is_anonymous and current.user_id != user_id else None
    report = None
    if anonymous is not None and merge_anonymous:
        # One unit of work of its own (portability.merge_anonymous): the anonymous workbook is
        # merged under the account's key and removed in one write batch, guarded on it being
        # what was read. The write below then finds it gone.
        report = msgspec.to_builtins(await portability.merge_anonymous(db, anonymous, user_id, dek))
    stamp = now_iso()

    def write(conn: sqlite3.Connection) -> tuple[Me, IssuedCookie]:
        if current is not None:
            conn.execute(Q.delete_session, (current.session_id,))
        if anonymous is not None:
            delete_user_rows(conn, anonymous.user_id)
        issued = open_session(conn, server, user_id, dek, is_anonymous=False, stamp=stamp)
        return read_me(conn, user_id), issued

    account, issued = await db.write(write)
    return SignedIn(account, issued, Principal(user_id, issued.session_id, dek, False), report)


# --- password change and recovery -------------------------------------------------------------


async def change_password(db: Database, server: ServerKeys, principal: Principal, *, current_password: str,
                          new_password: str) -> IssuedCookie:
    """Re-wrap the data key under the new password (no re-encryption); every other session of
    this account ends and this one gets a new id."""
    if principal.is_anonymous:
        raise Forbidden("Save your workbook with an email and password first.", code="not_claimed")
    row = await db.read(lambda c: c.execute(Q.credentials_by_user, (principal.user_id,)).fetchone())
    email = (await me(db, principal)).email
    secret = check_password(new_password, email=email)
    try:
        dek = await run_kdf(
            keys.unlock_with_password, user_id=principal.user_id, password=current_password,
            password_hash=row["password_hash"], wrapped_data_key=row["wrapped_data_key"], pepper=server.pepper,
        )
    except keys.WrongPassword:
        raise Unauthorized("The current password is not right.", code="invalid_credentials") from None
    new_hash, new_wrapped = await run_kdf(
        keys.change_password, dek, user_id=principal.user_id, new_password=secret, pepper=server.pepper,
        pepper_id=server.pepper_id, wrapped_data_key=row["wrapped_data_key"], params=server.argon2,
    )
    stamp = now_iso()

    def write(conn: sqlite3.Connection) -> IssuedCookie:
        conn.execute(Q.update_credentials, (new_hash, new_wrapped, stamp, principal.user_id))
        conn.execute(Q.delete_user_sessions, (principal.user_id,))
        return open_session(conn, server, principal.user_id, dek, is_anonymous=False, stamp=stamp)

    return await db.write(write)


@dataclass(frozen=True)
class Recovered:
    me: Me
    recovery_code: str
    cookie: IssuedCookie


async def recover(db: Database, server: ServerKeys, throttle: Throttle, *, email: str, recovery_code: str,
                  new_password: str) -> Recovered:
    """Forgotten password: the recovery code unwraps the data key, a new password and a new
    code replace the old ones (the old code stops working), every session ends, and this
    device gets a new one."""
    address = email.strip().lower()
    account_key = throttle.account_key(address)
    throttle.check_login(account_key)
    row = await db.read(lambda c: c.execute(Q.credentials_by_email, (address,)).fetchone())
    secret = check_password(new_password, email=address)
    if row is None:
        throttle.login_failed(account_key)
        raise Unauthorized("The email or recovery code is not right.", code="invalid_credentials")
    try:
        new_hash, new_wrapped, new_code = await run_kdf(
            keys.reset_with_recovery_code, user_id=row["user_id"], code=recovery_code, new_password=secret,
            pepper=server.pepper, pepper_id=server.pepper_id, wrapped_data_key=row["wrapped_data_key"],
            params=server.argon2,
        )
    except (keys.WrongRecoveryCode, ValueError):
        throttle.login_failed(account_key)
        raise Unauthorized("The email or recovery code is not right.", code="invalid_credentials") from None
    throttle.login_succeeded(account_key)
    dek = keys.unlock_with_recovery_code(user_id=row["user_id"], code=new_code, wrapped_data_key=new_wrapped)
    stamp = now_iso()
    user_id = row["user_id"]

    def write(conn: sqlite3.Connection) -> tuple[Me, IssuedCookie]:
        conn.execute(Q.update_credentials, (new_hash, new_wrapped, stamp, user_id))
        conn.execute(Q.delete_user_sessions, (user_id,))
        issued = open_session(conn, server, user_id, dek, is_anonymous=False, stamp=stamp)
        return read_me(conn, user_id), issued

    account, issued = await db.write(write)
    return Recovered(account, new_code, issued)


# --- devices ------------------------------------------------------------------------------------


async def list_sessions(db: Database, principal: Principal) -> list[dict[str, Any]]:
    rows = await db.read(lambda c: c.execute(Q.list_user_sessions, (principal.user_id,)).fetchall())
    return [
        {"id": r["id"], "created_at": r["created_at"], "last_seen_at": r["last_seen_at"],
         "current": r["id"] == principal.session_id}
        for r in rows
    ]


async def revoke_session(db: Database, principal: Principal, session_id: str) -> None:
    deleted = await db.write(lambda c: c.execute(Q.delete_user_session, (session_id, principal.user_id)).rowcount)
    if not deleted:
        raise NotFound("No such session.")


async def confirm_password(db: Database, server: ServerKeys, principal: Principal, password: str) -> None:
    """Re-authentication for sensitive operations (export, deletion): 401 when wrong."""
    row = await db.read(lambda c: c.execute(Q.credentials_by_user, (principal.user_id,)).fetchone())
    try:
        await run_kdf(
            keys.unlock_with_password, user_id=principal.user_id, password=password,
            password_hash=row["password_hash"], wrapped_data_key=row["wrapped_data_key"], pepper=server.pepper,
        )
    except keys.WrongPassword:
        raise Unauthorized("The password is not right.", code="invalid_credentials") from None


# --- deletion -----------------------------------------------------------------------------------


def delete_user_rows(conn: sqlite3.Connection, user_id: str) -> None:
    """Everything of one user: the tags first (no foreign key reaches them), then the user row,
    from which every other table cascades (custom skills stay, without their creator: spec §8)."""
    conn.execute(Q.delete_user_skill_tags, (user_id,))
    conn.execute(Q.delete_user, (user_id,))


async def delete_account(db: Database, server: ServerKeys, principal: Principal, *, password: str | None) -> None:
    if not principal.is_anonymous:
        await confirm_password(db, server, principal, password or "")
    await db.write(lambda c: delete_user_rows(c, principal.user_id))


# --- operators ----------------------------------------------------------------------------------


def idle_anonymous(conn: sqlite3.Connection, idle_days: int) -> list[sqlite3.Row]:
    cutoff = iso(timeutil.now() - timedelta(days=idle_days))
    return conn.execute(Q.idle_anonymous_users, (cutoff,)).fetchall()


def purge_anonymous(conn: sqlite3.Connection, idle_days: int, *, dry_run: bool) -> int:
    """Delete anonymous workbooks nobody has opened for idle_days (their cookies are gone)."""
    rows = idle_anonymous(conn, idle_days)
    if not dry_run:

        def write(c: sqlite3.Connection) -> None:
            for row in rows:
                delete_user_rows(c, row["id"])

        run_in_transaction(conn, write, True)
    return len(rows)


@dataclass(frozen=True)
class LoginReset:
    user_id: str
    erased_answers: int
    erased_tool_instances: int
    recovery_code: str


def reset_login(conn: sqlite3.Connection, server: ServerKeys, email: str) -> LoginReset:
    """An operator's last resort for a reader who lost both password and recovery code.

    Nobody can decrypt the old answers without one of them, so they are erased: every answer
    keeps its place (progress is not lost) but its content becomes an erased marker, tool
    instances are deleted, every session ends, and a new data key is wrapped under a new
    recovery code. The operator hands that code to the reader, who sets a new password with it
    (POST /api/account/recover).
    """
    address = email.strip().lower()
    row = conn.execute(Q.credentials_by_email, (address,)).fetchone()
    if row is None:
        raise NotFound(f"No account with the email {address}.")
    user_id = row["user_id"]
    dek = keys.new_data_key()
    throwaway = keys.b64u_encode(uuid.uuid4().bytes + uuid.uuid4().bytes)
    password_hash, wrapped, code = keys.claim_keys(
        dek, user_id=user_id, password=throwaway, pepper=server.pepper, pepper_id=server.pepper_id, params=server.argon2
    )
    stamp = now_iso()

    def write(c: sqlite3.Connection) -> tuple[int, int]:
        answers = c.execute(Q.responses_of_user, (user_id,)).fetchall()
        for answer in answers:
            sealed = keys.seal_column(dek, {"erased_at": stamp}, table="exercise_responses", row_id=answer["id"])
            c.execute(Q.erase_response, (sealed, answer["id"], user_id))
        c.execute(Q.delete_tool_skill_tags, (user_id,))
        tools = c.execute(Q.erase_tool_instances, (user_id,)).rowcount
        c.execute(Q.update_credentials, (password_hash, wrapped, stamp, user_id))
        c.execute(Q.delete_user_sessions, (user_id,))
        return len(answers), tools

    erased, tools = run_in_transaction(conn, write, True)
    return LoginReset(user_id, erased, tools, code)
