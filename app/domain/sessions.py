"""Sessions: from a cookie to the signed-in reader (and their data key), with timeouts.

The cookie carries a random 256-bit token and the user's data key sealed under a key derived
from the server secret and that token (app.domain.keys). The database keeps only the session
id derived from the token: a database dump can neither hijack a session nor unseal a key.
A request is signed in when the cookie opens, its session row exists, belongs to the same
user, and has not timed out.

Timeouts (ASVS 5.0 V7.1.1 asks for them to be written down; docs/security.md repeats them):
- anonymous workbooks: 90 days idle, no absolute limit (the cookie is the only key; losing it
  loses the workbook, so it is kept as long as it is used);
- claimed accounts: 7 days idle, 30 days absolute, then sign in again.
`last_seen_at` is written at most every 5 minutes, not on every request.
"""

from __future__ import annotations

import functools
import sqlite3
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from app import timeutil
from app.db.connection import Database
from app.db.queries import Q
from app.domain import keys
from app.domain.errors import Unauthorized
from app.timeutil import iso

ANONYMOUS_IDLE = timedelta(days=90)
CLAIMED_IDLE = timedelta(days=7)
CLAIMED_ABSOLUTE = timedelta(days=30)
TOUCH_EVERY = timedelta(minutes=5)
COOKIE_NAME = "dt_session"
# Opening a cookie (HKDF, AES-GCM, the canonical AAD) costs more CPU than the Daily Dos SQL.
# It is a pure function of (server key, cookie text), so the most recently seen cookies are
# kept opened: a forged or altered cookie is another key and never hits, failures are not
# kept, and every request still checks the session row (revocation, timeouts) below.
COOKIE_CACHE = 4096
_open_cookie = functools.lru_cache(maxsize=COOKIE_CACHE)(keys.open_cookie)


@dataclass(frozen=True)
class ServerKeys:
    """Independent keys derived once, at start-up, from the one configured server secret."""

    cookie: bytes
    pepper: bytes
    pepper_id: str
    csrf: bytes
    throttle: bytes
    argon2: keys.Argon2Params

    @classmethod
    def derive(cls, secret: bytes, *, argon2: keys.Argon2Params = keys.Argon2Params.PRODUCTION) -> ServerKeys:
        return cls(
            cookie=keys.server_subkey(secret, "cookie"),
            pepper=keys.server_subkey(secret, "pepper:p1"),
            pepper_id="p1",
            csrf=keys.server_subkey(secret, "csrf"),
            throttle=keys.server_subkey(secret, "throttle"),
            argon2=argon2,
        )

    def __repr__(self) -> str:
        return "ServerKeys(…)"


@dataclass(frozen=True)
class Principal:
    """The signed-in reader of one request. Holds the data key: never log or serialise it."""

    user_id: str
    session_id: str
    dek: keys.DataKey
    is_anonymous: bool

    def __repr__(self) -> str:
        return f"Principal(user_id={self.user_id!r}, anonymous={self.is_anonymous})"


@dataclass(frozen=True)
class IssuedCookie:
    value: str
    max_age: int
    session_id: str


def max_age(is_anonymous: bool) -> int:
    return int((ANONYMOUS_IDLE if is_anonymous else CLAIMED_ABSOLUTE).total_seconds())


def new_user_id() -> str:
    return str(uuid.uuid4())


def open_session(conn: sqlite3.Connection, server: ServerKeys, user_id: str, dek: keys.DataKey, *,
                 is_anonymous: bool, stamp: str) -> IssuedCookie:
    """Insert a session row (inside the caller's transaction) and seal its cookie."""
    token = keys.new_session_token()
    sid = keys.session_id(token)
    conn.execute(Q.insert_session, (sid, user_id, stamp, stamp))
    cookie = keys.seal_cookie(server.cookie, token, user_id=user_id, dek=dek)
    return IssuedCookie(cookie, max_age(is_anonymous), sid)


def create_anonymous_user(conn: sqlite3.Connection, user_id: str, stamp: str) -> None:
    conn.execute(Q.insert_user, (user_id, stamp, stamp))
    conn.execute(Q.insert_default_settings, (user_id, stamp, stamp))


async def start_anonymous(db: Database, server: ServerKeys) -> tuple[Principal, IssuedCookie]:
    """A new anonymous workbook: user, default settings, session, and a fresh data key."""
    user_id, dek, stamp = new_user_id(), keys.new_data_key(), iso(timeutil.now())

    def write(conn: sqlite3.Connection) -> IssuedCookie:
        create_anonymous_user(conn, user_id, stamp)
        return open_session(conn, server, user_id, dek, is_anonymous=True, stamp=stamp)

    issued = await db.write(write)
    return Principal(user_id, issued.session_id, dek, True), issued


def _expired(created_at: str, last_seen_at: str, is_anonymous: bool, moment: datetime) -> bool:
    seen = datetime.fromisoformat(last_seen_at.replace("Z", "+00:00"))
    created = datetime.fromisoformat(created_at.replace("Z", "+00:00"))
    if is_anonymous:
        return moment - seen > ANONYMOUS_IDLE
    return moment - seen > CLAIMED_IDLE or moment - created > CLAIMED_ABSOLUTE


async def authenticate(db: Database, server: ServerKeys, cookie: str | None) -> Principal:
    """The principal behind a cookie, or Unauthorized. Forged, unknown, moved or expired
    cookies are refused alike; an expired session's row is deleted."""
    if not cookie:
        raise Unauthorized("No session: start one with POST /api/session or sign in.", code="no_session")
    try:
        _token, sid, dek, user_id = _open_cookie(server.cookie, cookie)
    except keys.BadCookie:
        raise Unauthorized("This session is not valid; start a new one or sign in.", code="invalid_session") from None
    row = await db.read(lambda c: c.execute(Q.session_with_user, (sid,)).fetchone())
    if row is None or row["user_id"] != user_id:
        raise Unauthorized("This session has ended; start a new one or sign in.", code="invalid_session")
    moment = timeutil.now()
    is_anonymous = bool(row["is_anonymous"])
    if _expired(row["created_at"], row["last_seen_at"], is_anonymous, moment):
        await db.write(lambda c: c.execute(Q.delete_session, (sid,)))
        raise Unauthorized("This session has timed out; please sign in again.", code="session_expired")
    seen = datetime.fromisoformat(row["last_seen_at"].replace("Z", "+00:00"))
    if moment - seen >= TOUCH_EVERY:
        stamp = iso(moment)
        await db.write(lambda c: c.execute(Q.touch_session, (stamp, sid)))
    return Principal(user_id, sid, dek, is_anonymous)


async def end_session(db: Database, principal: Principal) -> None:
    await db.write(lambda c: c.execute(Q.delete_session, (principal.session_id,)))
