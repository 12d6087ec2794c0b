"""Settings: environment first, then CLI flags on top; one frozen object passed everywhere.

| setting          | environment               | flag                  | default                         |
|------------------|---------------------------|-----------------------|---------------------------------|
| database file    | DREAMTREE_DB              | --db FILE             | ./dreamtree.db                  |
| host, port       | DREAMTREE_HOST/_PORT      | --host, --port        | 127.0.0.1, 8000                 |
| Secure cookies   | DREAMTREE_SECURE_COOKIES  | --secure/--insecure   | as the reader connected (https) |
| trusted proxies  | DREAMTREE_TRUSTED_PROXIES | --trusted-proxies     | none                            |
| /metrics token   | DREAMTREE_METRICS_TOKEN   |                       | none (loopback peers only)      |
| server secret    | DREAMTREE_SECRET (hex)    |                       | <db>.key, created 0600          |
| D1-strict mode   | DREAMTREE_D1_STRICT       | --d1-strict/--no-…    | on                              |
| rate limits      | DREAMTREE_RATE_LIMITS     | --no-rate-limits      | on                              |
| access log lines | DREAMTREE_ACCESS_LOG      | serve --log-level     | on (off at warning and above)   |
| event loop's core| DREAMTREE_CPU             | serve --cpu auto|none|N | serve: auto (the last core); else none |
| server processes | DREAMTREE_WORKERS         | serve --workers N|auto | 1 (auto: one per core but one)   |
| storage engine   | DREAMTREE_ENGINE          | serve/migrate --engine sqlite|d1 | sqlite                 |
| D1 Worker        | DREAMTREE_D1_URL          |                       | (required with d1)              |
| D1 Worker token  | DREAMTREE_D1_TOKEN        |                       | (required with d1, ≥ 32 chars)  |
| D1 batch timeout | DREAMTREE_D1_TIMEOUT      |                       | 10 (seconds, retries included)  |
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import stat
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

SECRET_BYTES = 32
MIN_METRICS_TOKEN = 16
ENGINES = ("sqlite", "d1")
D1_TOKEN_MIN_CHARS = 32  # the Worker refuses shorter tokens too (wrangler-compat/src/worker.js)
D1_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})  # plain http to the Worker only here


class ConfigError(Exception):
    """A setting that cannot be used; the message says which and why."""


def _flag(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"not a boolean: {value!r}")


def _choice(value: str, options: tuple[str, ...], name: str) -> str:
    if value not in options:
        raise ConfigError(f"{name} must be one of {', '.join(options)} (not {value!r})")
    return value


def parse_trusted_proxies(value: str | None) -> tuple[str, ...]:
    """DREAMTREE_TRUSTED_PROXIES or --trusted-proxies: comma-separated addresses or CIDR
    networks, each normalised to a network ("10.0.0.1" -> "10.0.0.1/32"); none by default."""
    networks = []
    for item in (value or "").split(","):
        item = item.strip()
        if not item:
            continue
        try:
            networks.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise ConfigError(f"DREAMTREE_TRUSTED_PROXIES: {item!r} is not an IP address or network "
                              "(list addresses or CIDRs, comma-separated; host names are not resolved)") from None
    return tuple(networks)


def check_metrics_token(value: str | None) -> str | None:
    if not value:
        return None
    if len(value) < MIN_METRICS_TOKEN or not value.isascii() or not value.isprintable() or " " in value:
        raise ConfigError(f"DREAMTREE_METRICS_TOKEN must be at least {MIN_METRICS_TOKEN} printable ASCII "
                          "characters without spaces (e.g. `openssl rand -hex 32`)")
    return value


def _seconds(value: str | None, default: float, name: str) -> float:
    if value is None or value == "":
        return default
    try:
        seconds = float(value)
    except ValueError:
        raise ConfigError(f"{name} is not a number of seconds: {value!r}") from None
    if not 0 < seconds <= 300:
        raise ConfigError(f"{name} must be between 0 and 300 seconds (not {value})")
    return seconds


def check_cpu(value: str) -> str:
    """A DREAMTREE_CPU or --cpu value, checked."""
    if value in ("auto", "none") or value.isdigit():
        return value
    raise ConfigError(f"DREAMTREE_CPU must be auto, none or a core number (not {value!r})")


def serve_lock_path(host: str, port: int, suffix: str = "") -> Path:
    """A lock file of `dreamtree serve` on host:port, in the temporary directory: the one
    that keeps a second server off the address, and (`suffix`) the ones its workers number
    themselves by."""
    name = "".join(ch if ch.isalnum() or ch in ".-" else "_" for ch in f"{host}-{port}")
    return Path(tempfile.gettempdir()) / f"dreamtree-serve-{name}{suffix}.lock"


def check_workers(value: str) -> int:
    """A DREAMTREE_WORKERS or --workers value: a number of processes, or `auto`, which is one
    per core this process may use except one (at least 1): each worker's event loop and
    database threads keep a core of their own (`cpu`), and the last core is left to Argon2,
    the load balancer or proxy in front and the OS. On this project's 2-core machine that is
    1, which is also what measured best there (bench/README.md)."""
    if value == "auto":
        return max(1, len(os.sched_getaffinity(0)) - 1)
    if value.isdigit() and 1 <= int(value) <= 64:
        return int(value)
    raise ConfigError(f"DREAMTREE_WORKERS must be auto or a number from 1 to 64 (not {value!r})")


@dataclass(frozen=True)
class Settings:
    db_path: Path = Path("dreamtree.db")
    host: str = "127.0.0.1"
    port: int = 8000
    # None: Secure exactly when the reader connected over https (see `cookies_secure`).
    secure_cookies: bool | None = None
    secret_hex: str | None = field(default=None, repr=False)
    d1_strict: bool = True
    rate_limits: bool = True
    readers: int = 2
    # Argon2id cost: "production" (m=64 MiB, t=3, p=4) or "fast" (OWASP's floor, m=19 MiB, t=2,
    # p=1) for tests and development machines; never lower than OWASP.
    argon2: str = "production"
    # The core the event loop and its SQLite threads stay on: "auto" (the last core this process
    # may use, when it may use more than one), "none" (let the OS move them), or a core number.
    # Every request hands work between the loop and a database thread; on one core those
    # hand-offs stay in that core's cache and a worker answers about 1.5x the requests
    # (bench/README.md). Argon2 runs on the other cores, granian's own threads anywhere.
    # `dreamtree serve` defaults to "auto"; everything else (tests, the CLI) to "none".
    cpu: str = "none"
    # Server processes sharing the listening socket and the database file (SQLite in WAL mode
    # lets them read at once; writes take the file's lock one at a time, waiting up to the
    # busy timeout). docs/operations.md lists what each process keeps for itself.
    workers: int = 1
    # One JSON line per request on standard error (app/http/observability.py).
    access_log: bool = True
    # Reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (app/http/proxy.py),
    # as normalised networks; from any other peer those headers are ignored.
    trusted_proxies: tuple[str, ...] = ()
    # Lets a scraper that is not a local, non-proxy peer read /metrics (Authorization: Bearer).
    metrics_token: str | None = None
    # The storage engine: "sqlite" (the file at db_path) or "d1" (Cloudflare D1 through the
    # DreamTree D1 Worker at d1_url, authenticated with d1_token; docs/d1.md).
    engine: str = "sqlite"
    d1_url: str | None = None
    d1_token: str | None = field(default=None, repr=False)
    d1_timeout: float = 10.0

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        secure = env.get("DREAMTREE_SECURE_COOKIES")
        try:
            port = int(env.get("DREAMTREE_PORT", "8000"))
        except ValueError as exc:
            raise ConfigError(f"DREAMTREE_PORT is not a number: {env['DREAMTREE_PORT']!r}") from exc
        return cls(
            db_path=Path(env.get("DREAMTREE_DB", "dreamtree.db")),
            host=env.get("DREAMTREE_HOST", "127.0.0.1"),
            port=port,
            secure_cookies=None if secure in (None, "") else _flag(secure, True),
            secret_hex=env.get("DREAMTREE_SECRET") or None,
            d1_strict=_flag(env.get("DREAMTREE_D1_STRICT"), True),
            rate_limits=_flag(env.get("DREAMTREE_RATE_LIMITS"), True),
            argon2=_choice(env.get("DREAMTREE_ARGON2") or "production", ("production", "fast"), "DREAMTREE_ARGON2"),
            cpu=check_cpu(env.get("DREAMTREE_CPU") or "none"),
            workers=check_workers(env.get("DREAMTREE_WORKERS") or "1"),
            access_log=_flag(env.get("DREAMTREE_ACCESS_LOG"), True),
            trusted_proxies=parse_trusted_proxies(env.get("DREAMTREE_TRUSTED_PROXIES")),
            metrics_token=check_metrics_token(env.get("DREAMTREE_METRICS_TOKEN")),
            engine=_choice(env.get("DREAMTREE_ENGINE") or "sqlite", ENGINES, "DREAMTREE_ENGINE"),
            d1_url=env.get("DREAMTREE_D1_URL") or None,
            d1_token=env.get("DREAMTREE_D1_TOKEN") or None,
            d1_timeout=_seconds(env.get("DREAMTREE_D1_TIMEOUT"), 10.0, "DREAMTREE_D1_TIMEOUT"),
        )

    def with_(self, **changes: object) -> Settings:
        """A copy with the given CLI flags applied (None means 'not given')."""
        given: dict[str, Any] = {k: v for k, v in changes.items() if v is not None}
        return replace(self, **given)

    def to_env(self) -> dict[str, str]:
        """These settings as the environment a worker process reads them back from."""
        env = {
            "DREAMTREE_DB": str(self.db_path.resolve()),
            "DREAMTREE_HOST": self.host,
            "DREAMTREE_PORT": str(self.port),
            "DREAMTREE_D1_STRICT": "1" if self.d1_strict else "0",
            "DREAMTREE_RATE_LIMITS": "1" if self.rate_limits else "0",
            "DREAMTREE_ARGON2": self.argon2,
            "DREAMTREE_CPU": self.cpu,
            "DREAMTREE_WORKERS": str(self.workers),
            "DREAMTREE_ACCESS_LOG": "1" if self.access_log else "0",
            "DREAMTREE_TRUSTED_PROXIES": ",".join(self.trusted_proxies),
        }
        if self.metrics_token:
            env["DREAMTREE_METRICS_TOKEN"] = self.metrics_token
        if self.secure_cookies is not None:
            env["DREAMTREE_SECURE_COOKIES"] = "1" if self.secure_cookies else "0"
        if self.secret_hex:
            env["DREAMTREE_SECRET"] = self.secret_hex
        env["DREAMTREE_ENGINE"] = self.engine
        env["DREAMTREE_D1_TIMEOUT"] = repr(self.d1_timeout)
        if self.d1_url:
            env["DREAMTREE_D1_URL"] = self.d1_url
        if self.d1_token:
            env["DREAMTREE_D1_TOKEN"] = self.d1_token
        return env

    def d1_target(self) -> tuple[str, str]:
        """The D1 Worker's URL and token, checked; a ConfigError (one line) when unusable.

        The token travels in a header, so plain http is allowed only to a loopback address
        (wrangler dev); anything else must be https."""
        if not self.d1_url:
            raise ConfigError("the d1 engine needs DREAMTREE_D1_URL, the D1 Worker's address (e.g. http://127.0.0.1:8787)")
        if not self.d1_token:
            raise ConfigError("the d1 engine needs DREAMTREE_D1_TOKEN, the token the D1 Worker was given")
        if len(self.d1_token) < D1_TOKEN_MIN_CHARS or not self.d1_token.isprintable() or " " in self.d1_token:
            raise ConfigError(f"DREAMTREE_D1_TOKEN must be at least {D1_TOKEN_MIN_CHARS} printable characters "
                              "without spaces (e.g. `openssl rand -hex 32`)")
        parts = urlsplit(self.d1_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"DREAMTREE_D1_URL must be an http(s) address, not {self.d1_url!r}")
        if parts.scheme == "http" and parts.hostname not in D1_LOOPBACK_HOSTS:
            raise ConfigError("DREAMTREE_D1_URL must use https unless the Worker runs on this machine (the token would travel in clear)")
        if parts.query or parts.fragment or parts.username or parts.password:
            raise ConfigError("DREAMTREE_D1_URL takes no query, fragment or credentials (the token goes in DREAMTREE_D1_TOKEN)")
        return self.d1_url, self.d1_token

    def server_cores(self, slot: int = 0) -> set[int] | None:
        """The core to keep the event loop and its database threads on, or None. `slot` is
        the worker's number (0 to workers - 1): with `auto`, worker 0 takes the last core,
        worker 1 the one before, and so on round the cores; a core number is every worker's."""
        allowed = sorted(os.sched_getaffinity(0))
        if self.cpu == "none" or (self.cpu == "auto" and len(allowed) < 2):
            return None
        if self.cpu == "auto":
            return {allowed[-1 - slot % len(allowed)]}
        core = int(self.cpu)
        if core not in allowed:
            raise ConfigError(f"DREAMTREE_CPU: core {core} is not available (this process may use {allowed})")
        return {core}

    def cookies_secure(self, scheme: str) -> bool:
        """Whether a cookie set on a request made with `scheme` (the reader's, after
        app/http/proxy.py) is Secure: the explicit setting if there is one, else https only.
        Every cookie the service sets asks here, so the session and CSRF cookies agree."""
        if self.secure_cookies is not None:
            return self.secure_cookies
        return scheme == "https"

    @property
    def secret_path(self) -> Path:
        return self.db_path.with_name(self.db_path.name + ".key")

    def server_secret(self) -> bytes:
        """The server secret: from configuration, else the key file beside the database.

        The key file is created on first run with mode 0600. Losing it loses every session and
        every anonymous workbook, so it is backed up with the database (docs/operations.md).
        """
        if self.secret_hex:
            try:
                secret = bytes.fromhex(self.secret_hex)
            except ValueError as exc:
                raise ConfigError("DREAMTREE_SECRET must be hex") from exc
            if len(secret) < SECRET_BYTES:
                raise ConfigError(f"DREAMTREE_SECRET must be at least {SECRET_BYTES} bytes ({2 * SECRET_BYTES} hex digits)")
            return secret
        return load_or_create_secret(self.secret_path)


def load_or_create_secret(path: Path) -> bytes:
    """The server secret in `path`, created (0600) on first use.

    Several processes may start at once on one key file (`serve --workers`, several servers):
    a new secret is written whole to a file of its own and then linked into place, which fails
    if another process got there first; so no process ever reads a key file half written, and
    all of them end up with the one secret that won."""
    if not path.exists():
        secret = secrets.token_bytes(SECRET_BYTES)
        fd, draft = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # created 0600
        try:
            with os.fdopen(fd, "w", encoding="ascii") as handle:
                handle.write(secret.hex() + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.link(draft, path)
            return secret
        except FileExistsError:
            pass  # another process created it meanwhile: use theirs
        finally:
            os.unlink(draft)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise ConfigError(f"{path}: the server secret must not be readable by others (chmod 600 {path})")
    text = path.read_text(encoding="ascii").strip()
    try:
        secret = bytes.fromhex(text)
    except ValueError:
        raise ConfigError(f"{path}: not a DreamTree key file (expected hex)") from None
    if len(secret) < SECRET_BYTES:
        raise ConfigError(f"{path}: the server secret is too short")
    return secret
