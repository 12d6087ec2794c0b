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
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from app import timeutil
from app.db.engine import Engine, Refused, Result, Stmt, Work, Write, guard_query
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
# A session row's two timestamps change at most every TOUCH_EVERY, and every request reads
# them: parsed once per value, like the cookies (a pure function of the text).
_parse = functools.lru_cache(maxsize=2 * COOKIE_CACHE)(timeutil.parse)


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

    @classmethod
    def configured(cls, secret: bytes, argon2: str) -> ServerKeys:
        """The keys of a configured server (the app and the CLI alike): `argon2` is the
        setting's name, `production` or `fast` (tests and benchmarks only)."""
        params = keys.Argon2Params.FAST if argon2 == "fast" else keys.Argon2Params.PRODUCTION
        return cls.derive(secret, argon2=params)

    def __repr__(self) -> str:
        return "ServerKeys(…)"


class Principal:
    """The reader behind one request's session cookie, and the gate of their works.

    The cookie (sealed by the server, so user_id and the data key inside are authentic) says
    who they claim to be; whether the session still stands is checked by the database, inside
    the first read of whatever the request does (`Engine.query(work, principal)`): one
    statement in the same batch, no extra round trip. A failed check stops the work with 401;
    a session past its idle or absolute limit is deleted on the way out; `last_seen_at` is
    moved at most every 5 minutes, with the work's write when it has one. Every write batch
    starts with a guard that the session still exists, so a session ended between a work's
    read and its write can never write. `is_anonymous` is known once the session was checked.
    Holds the data key: never log or serialise it."""

    __slots__ = ("_anonymous", "dek", "session_id", "user_id")

    def __init__(self, user_id: str, session_id: str, dek: keys.DataKey, is_anonymous: bool | None = None) -> None:
        self.user_id = user_id
        self.session_id = session_id
        self.dek = dek
        self._anonymous = is_anonymous

    @property
    def is_anonymous(self) -> bool:
        if self._anonymous is None:
            raise RuntimeError("the session has not been checked yet (read it in a work first)")
        return self._anonymous

    def __repr__(self) -> str:
        return f"Principal(user_id={self.user_id!r}, anonymous={self._anonymous})"

    # --- the gate ---------------------------------------------------------------------------

    def statement(self) -> Stmt:
        return Stmt(Q.session_with_user, (self.session_id,))

    def verify(self, result: Result) -> Stmt | None:
        row = result.one()
        if row is None or row["user_id"] != self.user_id:
            raise Refused(Unauthorized("This session has ended; start a new one or sign in.", code="invalid_session"))
        moment = timeutil.now()
        is_anonymous = bool(row["is_anonymous"])
        seen = _parse(row["last_seen_at"])
        if _expired(_parse(row["created_at"]), seen, is_anonymous, moment):
            raise Refused(Unauthorized("This session has timed out; please sign in again.", code="session_expired"),
                          cleanup=Stmt(Q.delete_session, (self.session_id,)))
        self._anonymous = is_anonymous
        if moment - seen >= TOUCH_EVERY:
            return Stmt(Q.touch_session, (iso(moment), self.session_id))
        return None

    def holds(self) -> Stmt:
        return guard_query("session_ended", Q.session_exists, (self.session_id,))


@dataclass(frozen=True)
class IssuedCookie:
    value: str
    max_age: int
    session_id: str


def max_age(is_anonymous: bool) -> int:
    return int((ANONYMOUS_IDLE if is_anonymous else CLAIMED_ABSOLUTE).total_seconds())


def new_user_id() -> str:
    return str(uuid.uuid4())


def new_session(server: ServerKeys, user_id: str, dek: keys.DataKey, *, is_anonymous: bool,
                stamp: str) -> tuple[Stmt, IssuedCookie]:
    """A new session: the statement that inserts its row (for the caller's write batch) and
    its sealed cookie."""
    token = keys.new_session_token()
    sid = keys.session_id(token)
    cookie = keys.seal_cookie(server.cookie, token, user_id=user_id, dek=dek)
    return Stmt(Q.insert_session, (sid, user_id, stamp, stamp)), IssuedCookie(cookie, max_age(is_anonymous), sid)


def new_anonymous_user(user_id: str, stamp: str) -> list[Stmt]:
    """A new anonymous user and their default settings."""
    return [Stmt(Q.insert_user, (user_id, stamp, stamp)), Stmt(Q.insert_default_settings, (user_id, stamp, stamp))]


def start_anonymous_work(server: ServerKeys, user_id: str, dek: keys.DataKey, stamp: str) -> Work[IssuedCookie]:
    """One write batch: nobody's data is read (the user is new), so nothing is read first."""
    insert_session, issued = new_session(server, user_id, dek, is_anonymous=True, stamp=stamp)
    yield Write(new_anonymous_user(user_id, stamp), insert_session)
    return issued


async def start_anonymous(db: Engine, server: ServerKeys) -> tuple[Principal, IssuedCookie]:
    """A new anonymous workbook: user, default settings, session, and a fresh data key."""
    user_id, dek, stamp = new_user_id(), keys.new_data_key(), iso(timeutil.now())
    issued = await db.change(lambda: start_anonymous_work(server, user_id, dek, stamp), None)
    return Principal(user_id, issued.session_id, dek, True), issued


def _expired(created: datetime, seen: datetime, is_anonymous: bool, moment: datetime) -> bool:
    if is_anonymous:
        return moment - seen > ANONYMOUS_IDLE
    return moment - seen > CLAIMED_IDLE or moment - created > CLAIMED_ABSOLUTE


def principal_of(server: ServerKeys, cookie: str | None) -> Principal:
    """The reader a cookie names, not yet checked against the database (that happens inside
    their first work). Missing, forged and altered cookies are refused alike."""
    if not cookie:
        raise Unauthorized("No session: start one with POST /api/session or sign in.", code="no_session")
    try:
        _token, sid, dek, user_id = _open_cookie(server.cookie, cookie)
    except keys.BadCookie:
        raise Unauthorized("This session is not valid; start a new one or sign in.", code="invalid_session") from None
    return Principal(user_id, sid, dek)


def cookie_principal(server: ServerKeys, cookie: str | None) -> Principal | None:
    """The reader a cookie names (not yet checked against the database), or None when there
    is no cookie or it does not open: for requests where a session is optional."""
    try:
        return principal_of(server, cookie)
    except Unauthorized:
        return None


def standing(principal: Principal, result: Result) -> bool:
    """Whether the session a work read with `principal.statement()` still stands, for works
    that take an optional session as data rather than as their gate (sign-in, which replaces
    it anyway). `is_anonymous` is known afterwards when it does."""
    try:
        principal.verify(result)
    except Refused:
        return False
    return True


