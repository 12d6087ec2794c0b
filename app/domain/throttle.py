"""Rate limits and login throttling, kept in this process's memory.

Two kinds, both documented in docs/security.md:
- windows per client address (and per session) for the expensive or abusable endpoints:
  so many requests per window, then 429 with Retry-After;
- consecutive login failures per account, keyed by an HMAC of the normalised email (so the
  key exists for unknown emails too, and no plaintext email is kept): the first five are free,
  then 1 s, 2 s, 4 s … up to 15 minutes must pass before the next try. A success resets it.

The state is per process: DreamTree runs one worker per database file (the single SQLite
writer); a second worker would need a shared store. `--no-rate-limits` turns all of it off.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from app.domain.errors import TooManyAttempts

FREE_FAILURES = 5
MAX_DELAY_SECONDS = 15 * 60


@dataclass(frozen=True)
class Limit:
    count: int
    seconds: int


# Per client address unless said otherwise.
LIMITS: dict[str, Limit] = {
    "session_start": Limit(30, 3600),  # anonymous workbooks started
    "login": Limit(20, 60),
    "claim": Limit(10, 3600),
    "recover": Limit(10, 3600),
    "password": Limit(10, 3600),
    "delete": Limit(10, 3600),
    "export": Limit(20, 3600),
    "import": Limit(20, 3600),
}


@dataclass
class _Failures:
    count: int = 0
    last: float = 0.0


@dataclass
class Throttle:
    enabled: bool = True
    key: bytes = b""
    clock: Callable[[], float] = time.monotonic
    _windows: dict[tuple[str, str], deque[float]] = field(default_factory=dict)
    _failures: dict[str, _Failures] = field(default_factory=dict)

    def hit(self, action: str, who: str) -> None:
        """Count one request of `action` from `who`; TooManyAttempts past the limit."""
        if not self.enabled:
            return
        limit = LIMITS[action]
        now = self.clock()
        window = self._windows.setdefault((action, who), deque())
        while window and window[0] <= now - limit.seconds:
            window.popleft()
        if len(window) >= limit.count:
            retry = math.ceil(window[0] + limit.seconds - now)
            raise TooManyAttempts("Too many attempts from this address; try again later.", retry_after=retry)
        window.append(now)
        if len(self._windows) > 100_000:  # bounded memory: forget the oldest idle keys
            for key in list(self._windows)[:10_000]:
                if not self._windows[key]:
                    del self._windows[key]

    def account_key(self, email: str) -> str:
        return hmac.new(self.key, email.encode(), hashlib.sha256).hexdigest()

    def check_login(self, account: str) -> None:
        """Refuse a login try that comes sooner than the account's back-off allows."""
        if not self.enabled:
            return
        state = self._failures.get(account)
        if state is None or state.count < FREE_FAILURES:
            return
        delay = min(2 ** (state.count - FREE_FAILURES), MAX_DELAY_SECONDS)
        wait = state.last + delay - self.clock()
        if wait > 0:
            raise TooManyAttempts(
                "Too many failed sign-ins for this account; wait before trying again.", retry_after=math.ceil(wait)
            )

    def login_failed(self, account: str) -> None:
        state = self._failures.setdefault(account, _Failures())
        state.count += 1
        state.last = self.clock()

    def login_succeeded(self, account: str) -> None:
        self._failures.pop(account, None)
