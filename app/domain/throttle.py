"""Rate limits and sign-in throttling, kept in this process's memory.

Two kinds, both documented in docs/security.md ("Rate limits"):
- windows per client address (and per session) for the expensive or abusable endpoints:
  so many requests per window, then 429 with Retry-After;
- sign-in failures, counted so that guessing is slow but nobody else can lock an owner out:
  - per (email, client address): the first five failures are free, then 1 s, 2 s, 4 s … up
    to 15 minutes must pass before that address tries that email again; a success resets it;
  - per client address: at most 100 failed sign-ins an hour, whatever the emails (spraying
    one password over many accounts);
  - per email, from every address together: after 100 failures in a row (NIST SP 800-63B-4
    §3.2.2's ceiling before any lock-out) the email counts as under attack, and an address
    that has already failed on it waits at least a minute, doubling, between its tries. An
    address that has not failed on it is never refused because of it: the right password from
    the owner's own device always gets in. A success resets it.
  Emails are keyed by an HMAC of the normalised email (so the key exists for unknown emails
  too, and no plaintext email is kept).
- recovery codes are 128 random bits, beyond guessing: a valid code is never refused. Wrong
  codes are counted per client address, 10 an hour answered 401, then 429.

The state is per process: with N processes sharing one database an attacker gets N times the
budget. Entries idle for a day are forgotten, and memory stays bounded. `--no-rate-limits`
turns all of it off.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from app.domain.errors import TooManyAttempts

FREE_FAILURES = 5
"""Failures of one address on one email before its back-off starts."""
MAX_DELAY_SECONDS = 15 * 60
UNDER_ATTACK = 100
"""Failures in a row on one email, from any addresses, before it counts as under attack."""
UNDER_ATTACK_FIRST_DELAY = 60
FORGET_SECONDS = 24 * 3600
"""Failure counts idle for this long are forgotten."""
MAX_ENTRIES = 100_000


@dataclass(frozen=True)
class Limit:
    count: int
    seconds: int


# Per client address unless said otherwise.
LIMITS: dict[str, Limit] = {
    "session_start": Limit(30, 3600),  # anonymous workbooks started
    "login": Limit(20, 60),  # sign-in requests
    "login_failures": Limit(100, 3600),  # failed sign-ins, whatever the email
    "claim": Limit(10, 3600),
    "recover_failures": Limit(10, 3600),  # wrong recovery codes (a valid code is never refused)
    "password": Limit(10, 3600),
    "delete": Limit(10, 3600),
    "export": Limit(20, 3600),
    "import": Limit(20, 3600),
}


@dataclass
class _Failures:
    count: int = 0
    last: float = 0.0


def _backoff(failures: int) -> float:
    """The wait after `failures` failures of one address on one email."""
    if failures < FREE_FAILURES:
        return 0
    return min(2.0 ** (failures - FREE_FAILURES), MAX_DELAY_SECONDS)


def _under_attack_backoff(failures: int) -> float:
    """The wait of an address that failed `failures` times on an email under attack."""
    if failures < 1:
        return 0
    return min(UNDER_ATTACK_FIRST_DELAY * 2.0 ** min(failures - 1, 20), MAX_DELAY_SECONDS)


@dataclass
class Throttle:
    enabled: bool = True
    key: bytes = b""
    clock: Callable[[], float] = time.monotonic
    _windows: dict[tuple[str, str], deque[float]] = field(default_factory=dict)
    _failures: dict[tuple[str, str], _Failures] = field(default_factory=dict)  # (email key, address)
    _email_failures: dict[str, _Failures] = field(default_factory=dict)  # email key

    # --- windows --------------------------------------------------------------------------

    def _window(self, action: str, who: str, now: float) -> deque[float]:
        limit = LIMITS[action]
        window = self._windows.setdefault((action, who), deque())
        while window and window[0] <= now - limit.seconds:
            window.popleft()
        return window

    def _refuse_when_full(self, action: str, who: str, now: float, detail: str) -> deque[float]:
        window = self._window(action, who, now)
        limit = LIMITS[action]
        if len(window) >= limit.count:
            raise TooManyAttempts(detail, retry_after=math.ceil(window[0] + limit.seconds - now))
        return window

    def hit(self, action: str, who: str) -> None:
        """Count one request of `action` from `who`; TooManyAttempts past the limit."""
        if not self.enabled:
            return
        now = self.clock()
        self._refuse_when_full(action, who, now, "Too many attempts from this address; try again later.").append(now)
        if len(self._windows) > MAX_ENTRIES:  # bounded memory: forget the oldest idle keys
            for key in list(self._windows)[:10_000]:
                if not self._windows[key]:
                    del self._windows[key]

    # --- sign-in failures -------------------------------------------------------------------

    def account_key(self, email: str) -> str:
        return hmac.new(self.key, email.encode(), hashlib.sha256).hexdigest()

    def _fresh(self, state: _Failures | None, now: float) -> _Failures | None:
        return state if state is not None and now - state.last < FORGET_SECONDS else None

    def check_sign_in(self, email: str, client: str) -> None:
        """Refuse a sign-in try from `client` that comes sooner than its back-off allows."""
        if not self.enabled:
            return
        now = self.clock()
        self._refuse_when_full("login_failures", client, now,
                               "Too many failed sign-ins from this address; try again later.")
        account = self.account_key(email)
        mine = self._fresh(self._failures.get((account, client)), now)
        if mine is None:
            return  # an address that has not failed on this email is never refused because of it
        wait = _backoff(mine.count)
        everyone = self._fresh(self._email_failures.get(account), now)
        if everyone is not None and everyone.count >= UNDER_ATTACK:
            wait = max(wait, _under_attack_backoff(mine.count))
        left = mine.last + wait - now
        if left > 0:
            raise TooManyAttempts(
                "Too many failed sign-ins for this account from this address; wait before trying again.",
                retry_after=math.ceil(left),
            )

    def sign_in_failed(self, email: str, client: str) -> None:
        if not self.enabled:
            return
        now = self.clock()
        self._window("login_failures", client, now).append(now)
        account = self.account_key(email)
        _count_failure(self._failures, (account, client), now)
        _count_failure(self._email_failures, account, now)

    def sign_in_succeeded(self, email: str, client: str) -> None:
        """The owner proved it: their address's count and the email's run of failures end.
        Other addresses' counts on the email stay (an attacker's back-off goes on)."""
        account = self.account_key(email)
        self._failures.pop((account, client), None)
        self._email_failures.pop(account, None)

    def recovery_failed(self, client: str) -> None:
        """Count a wrong recovery code from `client`: TooManyAttempts (instead of the caller's
        401) once it has had its share. Valid codes never come here."""
        if not self.enabled:
            return
        now = self.clock()
        self._refuse_when_full("recover_failures", client, now,
                               "Too many wrong recovery codes from this address; try again later.").append(now)


K = TypeVar("K")


def _count_failure(table: dict[K, _Failures], key: K, now: float) -> None:
    state = table.get(key)
    if state is None or now - state.last >= FORGET_SECONDS:
        state = table[key] = _Failures()
    state.count += 1
    state.last = now
    if len(table) > MAX_ENTRIES:
        _prune(table, now)


def _prune(table: dict[K, _Failures], now: float) -> None:
    """Bounded memory: forget failures idle for a day; past that, the oldest ones."""
    for key in [k for k, v in table.items() if now - v.last >= FORGET_SECONDS]:
        del table[key]
    if len(table) > MAX_ENTRIES:
        for key in sorted(table, key=lambda k: table[k].last)[: len(table) - MAX_ENTRIES * 9 // 10]:
            del table[key]
