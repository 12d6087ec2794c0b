"""Accounts: start or resume a workbook, claim it, sign in and out, change or recover the
password, devices, deletion, and the operators' purge and login reset.

Every database access is a unit of work (app/db/engine.py). Argon2id (app.domain.kdf.run_kdf:
a worker thread, at most two at a time, 503 past a queue timeout) never runs inside one: a flow
that needs it reads in one work (the credentials, the session), runs Argon2, then writes in a
second work whose batch is guarded on what was read, so the writer is never held while Argon2
runs and nothing changed in between can be overwritten:
- the credentials row (`replace_credentials` only over the hash and stamp read, then
  `changed("credentials_changed")`; or the `credentials_unchanged` guard): two password
  changes, or a change racing a recovery, can never leave a wrapped key no password opens;
- the session (`Principal.holds()`): a session ended meanwhile can never write;
- `users.is_anonymous` (claim flips it only while it is 1) and `emails.email UNIQUE` (two
  claims of one email: exactly one account);
- an anonymous workbook read as empty is discarded at sign-in only while it still is.
So such a request costs a read batch and a write batch, like every other write.

Throttling (app/domain/throttle.py) takes the client address as a plain string: the HTTP
layer says who the client is, the domain decides.

Long on purpose: every flow here writes the same rows (users, emails, auth, sessions) under the
guards above; in one module a review sees every writer of the credentials row and every refusal
together. The sections (`# --- claim`, `# --- sign in`, …) follow the flows.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Generic, TypeVar

import msgspec

from app import timeutil
from app.db.engine import ConstraintFailed, Engine, GuardFailed, Read, Row, Stmt, Work, Write, changed, guard_query
from app.db.queries import Q
from app.domain import keys, portability
from app.domain.errors import Conflict, DomainError, Forbidden, Invalid, NotFound, Unauthorized
from app.domain.kdf import run_kdf
from app.domain.passwords import check_password
from app.domain.portability.report import ImportReport
from app.domain.sessions import (
    IssuedCookie,
    Principal,
    ServerKeys,
    new_anonymous_user,
    new_session,
    new_user_id,
    standing,
)
from app.domain.settings import ReaderSettings, settings_of
from app.domain.throttle import Throttle
from app.timeutil import iso, now_iso

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
INVALID_CREDENTIALS = "The email or password is not right."
WRONG_RECOVERY = "The email or recovery code is not right."
PURGE_CHUNK = 500
"""Idle anonymous workbooks deleted per write batch by `purge_anonymous`."""

B = TypeVar("B")


def normalize_email(email: str) -> str:
    """Emails are the login name: trimmed and lower-cased, then checked for a plausible shape."""
    value = email.strip().lower()
    if len(value) > 254 or not _EMAIL.match(value):
        raise Invalid("Enter an email address like name@example.com.", code="invalid_email")
    return value


def login_name(email: str) -> str:
    """The email as sign-in looks it up: normalised when it has an email's shape, else only
    trimmed and lower-cased (it then matches nobody, and fails like a wrong password)."""
    try:
        return normalize_email(email)
    except Invalid:
        return email.strip().lower()


# --- the shapes the API answers with ------------------------------------------------------------


class Me(msgspec.Struct, frozen=True):
    """The reader: who they are, whether the workbook is saved to an account, their settings."""

    id: str
    is_anonymous: bool
    workbook_complete: bool
    email: str | None
    created_at: str
    settings: ReaderSettings


class Claimed(msgspec.Struct, frozen=True):
    """A workbook saved to an account, and its recovery code, shown this once."""

    user: Me
    recovery_code: str


class Recovered(msgspec.Struct, frozen=True):
    """A password reset with the recovery code, and the new code that replaces it (shown once)."""

    user: Me
    recovery_code: str


class SignedIn(msgspec.Struct, frozen=True):
    """The account signed in on this device; `merge` only when its anonymous workbook was merged."""

    user: Me
    merge: ImportReport | msgspec.UnsetType = msgspec.UNSET


class Device(msgspec.Struct, frozen=True):
    """One session of the account: a device signed in."""

    id: str
    created_at: str
    last_seen_at: str
    current: bool


@dataclass(frozen=True)
class Issued(Generic[B]):
    """An answer and the new session cookie that goes with it."""

    body: B
    cookie: IssuedCookie


@dataclass(frozen=True)
class Opened:
    """POST /api/session: the reader, and the cookie of a new workbook (None when resumed)."""

    me: Me
    cookie: IssuedCookie | None


def me_from_row(row: Row | None) -> Me:
    if row is None:
        raise Unauthorized("This account no longer exists.", code="invalid_session")
    return Me(
        id=row["id"],
        is_anonymous=bool(row["is_anonymous"]),
        workbook_complete=bool(row["workbook_complete"]),
        email=row["email"],
        created_at=row["created_at"],
        settings=settings_of(row),
    )


# --- refusals -----------------------------------------------------------------------------------


def _already_claimed() -> Conflict:
    return Conflict("This workbook is already saved to an account.", code="already_claimed")


def _email_taken() -> Conflict:
    return Conflict("An account with this email already exists; sign in instead.", code="email_taken")


def _anonymous_data_present() -> Conflict:
    return Conflict(
        "This device holds an unsaved workbook with answers. Sign in again with merge_anonymous "
        "true to bring them into your account, or false to discard them.",
        code="anonymous_data_present",
    )


def _refusal(failed: GuardFailed) -> DomainError:
    """What a guard of this module that stopped a write batch means to the reader."""
    if failed.name == "session_ended":
        return Unauthorized("This session has ended; start a new one or sign in.", code="invalid_session")
    if failed.name == "already_claimed":
        return _already_claimed()
    if failed.name == "anonymous_data_present":
        return _anonymous_data_present()
    return Conflict("The account's password or data changed meanwhile (on another device?); try again.",
                    code="changed_concurrently")



def delete_user_statements(user_id: str) -> list[Stmt]:
    """Everything of one user: the tags first (no foreign key reaches them), then the user row,
    from which every other table cascades (custom skills stay, without their creator: spec §8)."""
    return [Stmt(Q.delete_user_skill_tags, (user_id,)), Stmt(Q.delete_user, (user_id,))]


# --- me, and starting a workbook -------------------------------------------------------------------


def me_work(principal: Principal) -> Work[Me]:
    (row,) = yield Read(Stmt(Q.me, (principal.user_id,)))
    return me_from_row(row.one())


async def me(db: Engine, principal: Principal) -> Me:
    return await db.query(lambda: me_work(principal), principal)


def start_work(server: ServerKeys, user_id: str, dek: keys.DataKey, stamp: str) -> Work[Issued[Me]]:
    """A new anonymous workbook in one write batch, read back with it: the user is new, so
    there is nothing to read first."""
    insert_session, issued = new_session(server, user_id, dek, is_anonymous=True, stamp=stamp)
    results = yield Write(new_anonymous_user(user_id, stamp), insert_session, Stmt(Q.me, (user_id,)))
    return Issued(me_from_row(results[-1].one()), issued)


async def open_workbook(db: Engine, server: ServerKeys, throttle: Throttle, *, client: str,
                        current: Principal | None) -> Opened:
    """The reader behind this device's session when it stands; otherwise a new anonymous
    workbook (a forged, ended or expired session is never adopted)."""
    if current is not None:
        try:
            return Opened(await me(db, current), None)
        except Unauthorized:
            pass
    throttle.hit("session_start", client)
    user_id, dek, stamp = new_user_id(), keys.new_data_key(), iso(timeutil.now())
    started = await db.change(lambda: start_work(server, user_id, dek, stamp), None)
    return Opened(started.body, started.cookie)


def sign_out_work(principal: Principal) -> Work[None]:
    yield Read()  # the session, read by the gate: whether it is anonymous is known after it
    if principal.is_anonymous:
        # An anonymous workbook has no other key than this cookie: signing out deletes it.
        yield Write(delete_user_statements(principal.user_id))
    else:
        yield Write(Stmt(Q.delete_session, (principal.session_id,)))


async def sign_out(db: Engine, principal: Principal) -> None:
    """End this device's session (and delete an anonymous workbook: the page warns first)."""
    await db.change(lambda: sign_out_work(principal), principal)


# --- claim ----------------------------------------------------------------------------------


def claim_read_work(principal: Principal, address: str) -> Work[bool]:
    """Whether `address` is taken; refuses a workbook that is already saved to an account."""
    (taken,) = yield Read(Stmt(Q.email_taken, (address,)))
    if not principal.is_anonymous:
        raise _already_claimed()
    return bool(taken.value())


def claim_write_work(principal: Principal, server: ServerKeys, address: str, password_hash: str, wrapped: str,
                     code: str, stamp: str) -> Work[Issued[Claimed]]:
    """Anonymous → claimed in one batch: the user flips only while still anonymous, the email
    is taken only if nobody took it meanwhile (UNIQUE), and the session id rotates."""
    user = principal.user_id
    insert_session, issued = new_session(server, user, principal.dek, is_anonymous=False, stamp=stamp)
    try:
        results = yield Write(
            principal.holds(),
            Stmt(Q.claim_user, (stamp, user)), changed("already_claimed"),
            Stmt(Q.insert_email, (str(uuid.uuid4()), user, address, stamp)),
            Stmt(Q.insert_auth, (str(uuid.uuid4()), user, password_hash, wrapped, stamp, stamp)),
            Stmt(Q.delete_session, (principal.session_id,)),
            insert_session,
            Stmt(Q.me, (user,)),
        )
    except GuardFailed as failed:
        raise _refusal(failed) from None
    except ConstraintFailed as failed:
        if failed.unique and failed.on("emails.email"):
            raise _email_taken() from None
        raise
    return Issued(Claimed(me_from_row(results[-1].one()), code), issued)


async def claim(db: Engine, server: ServerKeys, throttle: Throttle, principal: Principal, *, client: str,
                email: str, password: str) -> Issued[Claimed]:
    """Anonymous → claimed: email + password wrap the EXISTING data key (no re-encryption),
    a recovery code is made and shown once, and the session id rotates.
    Reads (is it anonymous, is the email taken), Argon2, then one guarded write batch."""
    throttle.hit("claim", client)
    taken = await db.query(lambda: claim_read_work(principal, email.strip().lower()), principal)
    address = normalize_email(email)
    secret = check_password(password, email=address)
    if taken:
        raise _email_taken()
    password_hash, wrapped, code = await run_kdf(
        keys.claim_keys, principal.dek, user_id=principal.user_id, password=secret,
        pepper=server.pepper, pepper_id=server.pepper_id, params=server.argon2,
    )
    stamp = now_iso()
    return await db.change(
        lambda: claim_write_work(principal, server, address, password_hash, wrapped, code, stamp), None)


# --- checking a password ----------------------------------------------------------------------


@dataclass(frozen=True)
class Unlocked:
    """A password that opened an account: its data key, the credentials it was checked
    against (the write's guard), and new ones when the Argon2 parameters or pepper changed."""

    user_id: str
    dek: keys.DataKey
    password_hash: str
    updated_at: str
    rehashed: tuple[str, str] | None

    def still_standing(self, stamp: str) -> list[Stmt]:
        """The write's guard that these credentials still stand, re-hashing them on the way."""
        if self.rehashed is None:
            return [guard_query("credentials_changed", Q.credentials_unchanged,
                           (self.user_id, self.password_hash, self.updated_at))]
        new_hash, new_wrapped = self.rehashed
        return [Stmt(Q.replace_credentials, (new_hash, new_wrapped, stamp, self.user_id, self.password_hash,
                                              self.updated_at)),
                changed("credentials_changed")]


def credentials_work(address: str) -> Work[Row | None]:
    (row,) = yield Read(Stmt(Q.credentials_by_email, (address,)))
    return row.one()


async def check_credentials(server: ServerKeys, throttle: Throttle, client: str, address: str, password: str,
                            row: Row | None) -> Unlocked:
    """The data key for a right password; otherwise the one generic 401 after the same Argon2
    work, so neither the answer nor its timing says which emails exist. Counts the failure
    (or the success) for `client` and the email."""
    if row is None:
        await run_kdf(keys.dummy_password_work, password, server.argon2, server.pepper)
        throttle.sign_in_failed(address, client)
        raise Unauthorized(INVALID_CREDENTIALS, code="invalid_credentials")
    try:
        dek = await run_kdf(
            keys.unlock_with_password, user_id=row["user_id"], password=password,
            password_hash=row["password_hash"], wrapped_data_key=row["wrapped_data_key"], pepper=server.pepper,
        )
    except keys.WrongPassword:
        throttle.sign_in_failed(address, client)
        raise Unauthorized(INVALID_CREDENTIALS, code="invalid_credentials") from None
    throttle.sign_in_succeeded(address, client)
    rehashed = None
    if keys.needs_rehash(row["password_hash"], server.argon2, pepper_id=server.pepper_id):
        # Upgrade the Argon2 parameters (or pepper) while the password is at hand.
        rehashed = await run_kdf(
            keys.change_password, dek, user_id=row["user_id"], new_password=password, pepper=server.pepper,
            pepper_id=server.pepper_id, wrapped_data_key=row["wrapped_data_key"], params=server.argon2,
        )
    return Unlocked(row["user_id"], dek, row["password_hash"], row["updated_at"], rehashed)


def rehash_work(unlocked: Unlocked, stamp: str) -> Work[None]:
    try:
        yield Write(unlocked.still_standing(stamp))
    except GuardFailed as failed:
        raise _refusal(failed) from None


async def verify_credentials(db: Engine, server: ServerKeys, throttle: Throttle, email: str, password: str, *,
                             client: str = "local") -> tuple[str, keys.DataKey]:
    """(user_id, data key) for a right email and password (the command line's way to a
    reader's key; it passes no client address)."""
    address = login_name(email)
    throttle.check_sign_in(address, client)
    row = await db.query(lambda: credentials_work(address), None)
    unlocked = await check_credentials(server, throttle, client, address, password, row)
    if unlocked.rehashed is not None:
        stamp = now_iso()
        await db.change(lambda: rehash_work(unlocked, stamp), None)
    return unlocked.user_id, unlocked.dek


# --- sign in --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignInSeen:
    """What a sign-in read: the credentials, and this device's session when it stands."""

    credentials: Row | None
    device: Principal | None
    anonymous_has_answers: bool


def sign_in_read_work(address: str, device: Principal | None) -> Work[SignInSeen]:
    """The account's credentials and, in the same batch, this device's session (taken as
    data, not as a gate: a session that does not stand is simply replaced) and whether its
    anonymous workbook holds answers."""
    statements = [Stmt(Q.credentials_by_email, (address,))]
    if device is not None:
        statements += [device.statement(), Stmt(Q.user_has_answers, (device.user_id,))]
    results = yield Read(*statements)
    credentials = results[0].one()
    if device is None or not standing(device, results[1]):
        return SignInSeen(credentials, None, False)
    return SignInSeen(credentials, device, device.is_anonymous and bool(results[2].value()))


def sign_in_statements(server: ServerKeys, unlocked: Unlocked, cookie_session: str | None,
                       anonymous: Principal | None, anonymous_read_empty: bool,
                       stamp: str) -> tuple[list[Stmt], list[Stmt], IssuedCookie]:
    """The sign-in's write batch, in two halves (a merge of the anonymous workbook goes in
    between): the credentials still stand and this device's old session ends; then its
    anonymous workbook goes (only while still empty when it was read empty), the new session
    starts, and the reader is read back."""
    before = unlocked.still_standing(stamp)
    if cookie_session is not None:
        before.append(Stmt(Q.delete_session, (cookie_session,)))
    after: list[Stmt] = []
    if anonymous is not None:
        if anonymous_read_empty:
            after.append(guard_query("anonymous_data_present", Q.user_has_no_answers, (anonymous.user_id,)))
        after += delete_user_statements(anonymous.user_id)
    insert_session, issued = new_session(server, unlocked.user_id, unlocked.dek, is_anonymous=False, stamp=stamp)
    after += [insert_session, Stmt(Q.me, (unlocked.user_id,))]
    return before, after, issued


def sign_in_write_work(before: list[Stmt], after: list[Stmt], issued: IssuedCookie) -> Work[Issued[SignedIn]]:
    try:
        results = yield Write(before, after)
    except GuardFailed as failed:
        raise _refusal(failed) from None
    return Issued(SignedIn(me_from_row(results[-1].one())), issued)


async def sign_in(
    db: Engine, server: ServerKeys, throttle: Throttle, *, client: str, email: str, password: str,
    device: Principal | None, merge_anonymous: bool | None,
) -> Issued[SignedIn]:
    """Sign in on this device: a new session for the account.

    A device that holds an anonymous workbook with answers must say what happens to it:
    `merge_anonymous` true merges it into the account (the same merge as import, under the
    account's key), false discards it; without a choice the answer is 409
    `anonymous_data_present` and nothing changes. An empty one is replaced silently.
    Reads (credentials, this device's session), Argon2, then one guarded write batch."""
    throttle.hit("login", client)
    address = login_name(email)
    seen = await db.query(lambda: sign_in_read_work(address, device), None)
    if seen.anonymous_has_answers and merge_anonymous is None:
        raise _anonymous_data_present()
    throttle.check_sign_in(address, client)
    unlocked = await check_credentials(server, throttle, client, address, password, seen.credentials)
    stamp = now_iso()
    current = seen.device
    anonymous = current if current and current.is_anonymous and current.user_id != unlocked.user_id else None
    before, after, issued = sign_in_statements(
        server, unlocked, device.session_id if device is not None else None, anonymous,
        not seen.anonymous_has_answers, stamp)
    if anonymous is not None and seen.anonymous_has_answers and merge_anonymous:
        # The merge is a unit of work of its own (portability.merge_anonymous): the anonymous
        # workbook is re-sealed under the account's key, merged, and removed (its session with
        # it) in one write batch guarded on it being what was read. The sign-in's write then
        # finds it gone. Should that second write fail, nothing is lost: the answers are in
        # the account, and signing in again finishes it.
        merged = await portability.merge_anonymous(db, anonymous, unlocked.user_id, unlocked.dek)
        before, after, issued = sign_in_statements(server, unlocked, None, None, True, stamp)
        signed = await db.change(lambda: sign_in_write_work(before, after, issued), None)
        return Issued(SignedIn(signed.body.user, merged), signed.cookie)
    return await db.change(lambda: sign_in_write_work(before, after, issued), None)


# --- password change and recovery -------------------------------------------------------------


def password_read_work(principal: Principal) -> Work[Row]:
    (credentials,) = yield Read(Stmt(Q.credentials_by_user, (principal.user_id,)))
    row = credentials.one()
    if principal.is_anonymous or row is None:
        raise Forbidden("Save your workbook with an email and password first.", code="not_claimed")
    return row


def new_credentials_work(server: ServerKeys, user_id: str, dek: keys.DataKey, read: Row, new_hash: str,
                         new_wrapped: str, stamp: str, session: Principal | None) -> Work[Issued[Me]]:
    """New credentials over exactly the ones read (else nothing is written), every session of
    the account ends, and this device gets a new one."""
    insert_session, issued = new_session(server, user_id, dek, is_anonymous=False, stamp=stamp)
    try:
        results = yield Write(
            [session.holds()] if session is not None else [],
            Stmt(Q.replace_credentials, (new_hash, new_wrapped, stamp, user_id, read["password_hash"],
                                         read["updated_at"])),
            changed("credentials_changed"),
            Stmt(Q.delete_user_sessions, (user_id,)),
            insert_session,
            Stmt(Q.me, (user_id,)),
        )
    except GuardFailed as failed:
        raise _refusal(failed) from None
    return Issued(me_from_row(results[-1].one()), issued)


async def change_password(db: Engine, server: ServerKeys, throttle: Throttle, principal: Principal, *, client: str,
                          current_password: str, new_password: str) -> IssuedCookie:
    """Re-wrap the data key under the new password (no re-encryption); every other session of
    this account ends and this one gets a new id. Read, Argon2 (twice), one guarded write."""
    throttle.hit("password", client)
    row = await db.query(lambda: password_read_work(principal), principal)
    secret = check_password(new_password, email=row["email"])
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
    changed_ = await db.change(
        lambda: new_credentials_work(server, principal.user_id, dek, row, new_hash, new_wrapped, stamp, principal),
        None)
    return changed_.cookie


def _code_opens(row: Row, code: str) -> bool:
    """Whether the recovery code opens the account's recovery slot (HKDF: no Argon2)."""
    try:
        keys.unlock_with_recovery_code(user_id=row["user_id"], code=code, wrapped_data_key=row["wrapped_data_key"])
    except (keys.WrongRecoveryCode, ValueError):
        return False
    return True


async def recover(db: Engine, server: ServerKeys, throttle: Throttle, *, client: str, email: str,
                  recovery_code: str, new_password: str) -> Issued[Recovered]:
    """Forgotten password: the recovery code unwraps the data key, a new password and a new
    code replace the old ones (the old code stops working), every session ends, and this
    device gets a new one. A valid code is never throttled (128 random bits cannot be
    guessed); wrong ones are counted per client address. Read, Argon2, one guarded write."""
    address = email.strip().lower()
    secret = check_password(new_password, email=address)
    row = await db.query(lambda: credentials_work(address), None)
    if row is None or not _code_opens(row, recovery_code):
        throttle.recovery_failed(client)
        raise Unauthorized(WRONG_RECOVERY, code="invalid_credentials")
    user_id = row["user_id"]
    try:
        new_hash, new_wrapped, new_code = await run_kdf(
            keys.reset_with_recovery_code, user_id=user_id, code=recovery_code, new_password=secret,
            pepper=server.pepper, pepper_id=server.pepper_id, wrapped_data_key=row["wrapped_data_key"],
            params=server.argon2,
        )
    except (keys.WrongRecoveryCode, ValueError):
        raise Unauthorized(WRONG_RECOVERY, code="invalid_credentials") from None
    throttle.sign_in_succeeded(address, client)
    dek = keys.unlock_with_recovery_code(user_id=user_id, code=new_code, wrapped_data_key=new_wrapped)
    stamp = now_iso()
    done = await db.change(
        lambda: new_credentials_work(server, user_id, dek, row, new_hash, new_wrapped, stamp, None), None)
    return Issued(Recovered(done.body, new_code), done.cookie)


# --- devices ------------------------------------------------------------------------------------


def devices_work(principal: Principal) -> Work[list[Device]]:
    (rows,) = yield Read(Stmt(Q.list_user_sessions, (principal.user_id,)))
    return [Device(r["id"], r["created_at"], r["last_seen_at"], r["id"] == principal.session_id) for r in rows.rows]


async def list_sessions(db: Engine, principal: Principal) -> list[Device]:
    return await db.query(lambda: devices_work(principal), principal)


def revoke_work(principal: Principal, session_id: str) -> Work[None]:
    (found,) = yield Read(Stmt(Q.user_session, (session_id, principal.user_id)))
    if found.one() is None:
        raise NotFound("No such session.")
    yield Write(Stmt(Q.delete_user_session, (session_id, principal.user_id)))  # owner-scoped; gone already is fine


async def revoke_session(db: Engine, principal: Principal, session_id: str) -> None:
    await db.change(lambda: revoke_work(principal, session_id), principal)


def own_credentials_work(principal: Principal) -> Work[Row | None]:
    """The reader's credentials; None for an anonymous workbook (it has none)."""
    (credentials,) = yield Read(Stmt(Q.credentials_by_user, (principal.user_id,)))
    return None if principal.is_anonymous else credentials.one()


async def _confirm(server: ServerKeys, principal: Principal, password: str, row: Row | None) -> None:
    if row is None:
        raise Unauthorized("The password is not right.", code="invalid_credentials")
    try:
        await run_kdf(
            keys.unlock_with_password, user_id=principal.user_id, password=password,
            password_hash=row["password_hash"], wrapped_data_key=row["wrapped_data_key"], pepper=server.pepper,
        )
    except keys.WrongPassword:
        raise Unauthorized("The password is not right.", code="invalid_credentials") from None


async def confirm_password(db: Engine, server: ServerKeys, principal: Principal, password: str) -> None:
    """Re-authentication for sensitive operations (export, deletion): 401 when wrong."""
    row = await db.query(lambda: own_credentials_work(principal), principal)
    await _confirm(server, principal, password, row)


# --- deletion -----------------------------------------------------------------------------------


def delete_account_work(principal: Principal, confirmed: Row | None) -> Work[None]:
    """Everything of the reader, while their session stands and (for an account) while the
    credentials the password was confirmed against still do."""
    statements: list[Stmt] = [principal.holds()]
    if confirmed is not None:
        statements.append(guard_query("credentials_changed", Q.credentials_unchanged,
                                 (principal.user_id, confirmed["password_hash"], confirmed["updated_at"])))
    try:
        yield Write(statements, delete_user_statements(principal.user_id))
    except GuardFailed as failed:
        raise _refusal(failed) from None


async def delete_account(db: Engine, server: ServerKeys, throttle: Throttle, principal: Principal, *, client: str,
                         password: str | None) -> None:
    """Delete the account and everything in it; a claimed account gives its password first.
    Read, Argon2 (claimed accounts), one guarded write."""
    throttle.hit("delete", client)
    row = await db.query(lambda: own_credentials_work(principal), principal)
    if not principal.is_anonymous:
        await _confirm(server, principal, password or "", row)
    await db.change(lambda: delete_account_work(principal, row), None)


# --- operators ----------------------------------------------------------------------------------


def idle_count_work(cutoff: str) -> Work[int]:
    (count,) = yield Read(Stmt(Q.count_idle_anonymous_users, (cutoff,)))
    return int(count.value())


def purge_chunk_work(cutoff: str) -> Work[int]:
    """Up to PURGE_CHUNK idle anonymous workbooks, decided inside the batch (one used or
    claimed since the operator asked is kept): nothing to read first."""
    results = yield Write(Stmt(Q.delete_idle_anonymous_tags, (cutoff, PURGE_CHUNK)),
                          Stmt(Q.delete_idle_anonymous_users, (cutoff, PURGE_CHUNK)))
    return results[1].changes


async def purge_anonymous(db: Engine, idle_days: int, *, dry_run: bool) -> int:
    """Delete anonymous workbooks nobody has opened for idle_days (their cookies are gone)."""
    cutoff = iso(timeutil.now() - timedelta(days=idle_days))
    if dry_run:
        return await db.query(lambda: idle_count_work(cutoff), None)
    total = 0
    while True:
        deleted = await db.change(lambda: purge_chunk_work(cutoff), None)
        total += deleted
        if deleted < PURGE_CHUNK:
            return total


@dataclass(frozen=True)
class LoginReset:
    user_id: str
    erased_answers: int
    erased_tool_instances: int
    recovery_code: str


def reset_read_work(address: str) -> Work[tuple[Row | None, list[str]]]:
    credentials, answers = yield Read(Stmt(Q.credentials_by_email, (address,)),
                                      Stmt(Q.responses_of_email, (address,)))
    return credentials.one(), answers.column()


def reset_write_work(read: Row, erased: list[list[str]], password_hash: str, wrapped: str,
                     stamp: str) -> Work[int]:
    """New credentials over exactly the ones read, every answer read erased in one statement
    (and no answer saved meanwhile left sealed under the old key), tool entries deleted,
    every session ended. Answers the number of tool entries deleted."""
    user_id = read["user_id"]
    ids = [answer_id for answer_id, _ in erased]
    try:
        results = yield Write(
            Stmt(Q.replace_credentials, (password_hash, wrapped, stamp, user_id, read["password_hash"],
                                         read["updated_at"])),
            changed("credentials_changed"),
            guard_query("answers_changed", Q.answers_all_known, (user_id, msgspec.json.encode(ids).decode())),
            Stmt(Q.erase_responses, (msgspec.json.encode(erased).decode(), user_id)),
            Stmt(Q.delete_tool_skill_tags, (user_id,)),
            Stmt(Q.erase_tool_instances, (user_id,)),
            Stmt(Q.delete_user_sessions, (user_id,)),
        )
    except GuardFailed:
        raise Conflict("The account changed while it was being reset; run the command again.",
                       code="changed_concurrently") from None
    return results[-2].changes


async def reset_login(db: Engine, server: ServerKeys, email: str) -> LoginReset:
    """An operator's last resort for a reader who lost both password and recovery code.

    Nobody can decrypt the old answers without one of them, so they are erased: every answer
    keeps its place (progress is not lost) but its content becomes an erased marker, tool
    instances are deleted, every session ends, and a new data key is wrapped under a new
    recovery code. The operator hands that code to the reader, who sets a new password with it
    (POST /api/account/recover). Read, Argon2, one guarded write.
    """
    address = email.strip().lower()
    row, answer_ids = await db.query(lambda: reset_read_work(address), None)
    if row is None:
        raise NotFound(f"No account with the email {address}.")
    user_id = row["user_id"]
    dek = keys.new_data_key()
    throwaway = keys.b64u_encode(uuid.uuid4().bytes + uuid.uuid4().bytes)
    password_hash, wrapped, code = await run_kdf(
        keys.claim_keys, dek, user_id=user_id, password=throwaway, pepper=server.pepper,
        pepper_id=server.pepper_id, params=server.argon2,
    )
    stamp = now_iso()
    erased = [[answer_id, keys.seal_column(dek, {"erased_at": stamp}, table="exercise_responses", row_id=answer_id)]
              for answer_id in answer_ids]
    tools = await db.change(lambda: reset_write_work(row, erased, password_hash, wrapped, stamp), None)
    return LoginReset(user_id, len(erased), tools, code)
