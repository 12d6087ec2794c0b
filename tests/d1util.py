"""Helpers for the tests that run Cloudflare's wrangler against its local D1 (`pytest -m d1`).

wrangler is pinned in wrangler-compat/ (package.json + package-lock.json; `npm ci` there).
Every call here is `wrangler d1 … --local --persist-to DIR -c CONFIG`: a throw-away state
directory per test, nothing ever sent to Cloudflare, and no prompt (CI=true makes wrangler
auto-confirm `migrations apply`). See docs/d1.md.

Without node_modules the D1 tests skip on a developer machine, but fail when the CI
environment variable is set, so CI can never pass by silently skipping them.

`WorkerProcess` runs the D1 Worker (wrangler-compat/src/worker.js) with `wrangler dev` on a
free loopback port, a random token and its own `--persist-to` directory; the `d1_worker`
fixture in conftest.py starts one per test session (per xdist worker). `RoundTrips` counts
the batches a D1Engine sends (the `d1_round_trips` fixture).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.servers import free_port

PROJECT_ROOT = Path(__file__).resolve().parents[1]
COMPAT_DIR = PROJECT_ROOT / "wrangler-compat"
WRANGLER_TOML = COMPAT_DIR / "wrangler.toml"
WRANGLER_BIN = COMPAT_DIR / "node_modules" / ".bin" / ("wrangler.cmd" if os.name == "nt" else "wrangler")
BINDING = "DB"
TIMEOUT_S = 120.0  # one wrangler call takes ~2 s; this only catches a hang

# Where miniflare keeps local D1 databases under --persist-to (miniflare's layout; docs/d1.md).
STATE_SUBDIR = Path("v3", "d1", "miniflare-D1DatabaseObject")

# Keeps wrangler quiet, offline and non-interactive:
# - CI=true: no prompts (`migrations apply` auto-confirms "yes").
# - WRANGLER_SEND_METRICS / WRANGLER_SEND_ERROR_REPORTS=false: no telemetry, no Sentry prompt.
# - WRANGLER_HIDE_BANNER=true: no banner, and so no npm "update available" check (the banner
#   is what triggers it; it has a 3 s cap, but nothing to gain from it here).
# - FORCE_COLOR=0 / NO_COLOR=1: plain text to parse.
WRANGLER_ENV = {
    "CI": "true",
    "WRANGLER_SEND_METRICS": "false",
    "WRANGLER_SEND_ERROR_REPORTS": "false",
    "WRANGLER_HIDE_BANNER": "true",
    "FORCE_COLOR": "0",
    "NO_COLOR": "1",
}

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class WranglerError(AssertionError):
    """A wrangler command failed or printed something we could not parse."""


@dataclass(frozen=True)
class Result:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    def describe(self) -> str:
        return (
            f"wrangler {' '.join(self.args)} -> exit {self.returncode}\n"
            f"--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}"
        )


def require_wrangler() -> Wrangler:
    """The pinned wrangler; skips without `npm ci`, but fails under CI (no silent skip there).

    Call it from a (module-scoped) fixture: `return d1util.require_wrangler()`.
    """
    problem = None
    if shutil.which("node") is None:
        problem = "node is not on PATH"
    elif not WRANGLER_BIN.exists():
        problem = f"{WRANGLER_BIN} is missing (run `cd wrangler-compat && npm ci`)"
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"D1 tests cannot run under CI: {problem}", pytrace=False)
        pytest.skip(problem)
    return Wrangler(WRANGLER_BIN)


def database_id(config: Path = WRANGLER_TOML, binding: str = BINDING) -> str:
    """The id miniflare keys the local file on: preview_database_id ?? database_id ?? binding."""
    with config.open("rb") as f:
        data = tomllib.load(f)
    for db in data.get("d1_databases", []):
        if db.get("binding") == binding:
            return str(db.get("preview_database_id") or db.get("database_id") or binding)
    raise KeyError(f"{config}: no d1_databases entry with binding {binding!r}")


def state_file_name(db_id: str) -> str:
    """miniflare's durableObjectNamespaceIdFromName for D1 (wrangler internals; docs/d1.md quotes the result)."""
    key = hashlib.sha256(b"miniflare-D1DatabaseObject").digest()
    a = hmac.new(key, db_id.encode(), hashlib.sha256).digest()[:16]
    b = hmac.new(key, a, hashlib.sha256).digest()[:16]
    return (a + b).hex() + ".sqlite"


def state_file_path(persist_to: Path, db_id: str | None = None) -> Path:
    """Where wrangler keeps the database under --persist-to (computed; may not exist yet)."""
    return persist_to / STATE_SUBDIR / state_file_name(db_id or database_id())


def find_state_file(persist_to: Path) -> Path:
    """The one database file wrangler created under persist_to (found, not computed)."""
    found = [p for p in (persist_to / STATE_SUBDIR).glob("*.sqlite") if p.name != "metadata.sqlite"]
    if len(found) != 1:
        raise WranglerError(f"expected one D1 state file under {persist_to / STATE_SUBDIR}, found {found}")
    return found[0]


def write_config(directory: Path, migrations_dir: Path, db_id: str | None = None) -> Path:
    """A copy of wrangler-compat/wrangler.toml in directory, its migrations_dir replaced (and
    its `main` made absolute, so that `wrangler dev -c` still finds the Worker)."""
    text = WRANGLER_TOML.read_text(encoding="utf-8")
    text, count = re.subn(
        r'^migrations_dir\s*=.*$', f"migrations_dir = {json.dumps(str(migrations_dir))}", text, flags=re.M
    )
    if count != 1:
        raise WranglerError(f"{WRANGLER_TOML}: expected one migrations_dir line")
    text = re.sub(r'^main\s*=\s*"([^"]+)"\s*$',
                  lambda m: f"main = {json.dumps(str(COMPAT_DIR / m.group(1)))}", text, flags=re.M)
    if db_id is not None:
        text = re.sub(r'^database_id\s*=.*$', f"database_id = {json.dumps(db_id)}", text, flags=re.M)
    config = directory / "wrangler.toml"
    config.write_text(text, encoding="utf-8")
    return config


class Wrangler:
    def __init__(self, binary: Path) -> None:
        self.binary = binary

    def run(self, *args: str, timeout: float = TIMEOUT_S) -> Result:
        """Run wrangler with args; never prompts; kills the whole process group on timeout."""
        env = {**os.environ, **WRANGLER_ENV}
        # Debug logs go into the state directory, not into ~/.config/.wrangler/logs.
        persist = next((args[i + 1] for i, a in enumerate(args[:-1]) if a == "--persist-to"), None)
        if persist:
            env["WRANGLER_LOG_PATH"] = str(Path(persist) / "logs")
        proc = subprocess.Popen(
            [str(self.binary), *args],
            cwd=COMPAT_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
            start_new_session=True,  # workerd is a child of node: kill both on timeout
        )
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            raise WranglerError(f"wrangler {' '.join(args)} timed out after {timeout} s\n{out}\n{err}") from None
        return Result(list(args), proc.returncode, _ANSI.sub("", out), _ANSI.sub("", err))

    def d1(self, *args: str, persist_to: Path, config: Path = WRANGLER_TOML, check: bool = True) -> Result:
        """`wrangler d1 <args> --local --persist-to persist_to -c config`."""
        result = self.run("d1", *args, "--local", "--persist-to", str(persist_to), "-c", str(config))
        if check and result.returncode != 0:
            raise WranglerError(result.describe())
        return result

    def execute(self, sql: str, *, persist_to: Path, config: Path = WRANGLER_TOML) -> list[dict[str, Any]]:
        """`d1 execute --command sql --json`: the rows of the last statement."""
        result = self.d1("execute", BINDING, "--command", sql, "--json", persist_to=persist_to, config=config)
        try:
            batches = json.loads(result.stdout)
        except json.JSONDecodeError as exc:
            raise WranglerError(f"not JSON: {exc}\n{result.describe()}") from exc
        if not batches or not all(b.get("success") for b in batches):
            raise WranglerError(result.describe())
        return list(batches[-1]["results"])

    def migrations_apply(self, *, persist_to: Path, config: Path = WRANGLER_TOML) -> list[str]:
        """`d1 migrations apply`: the names wrangler applied ([] when it had nothing to do)."""
        result = self.d1("migrations", "apply", BINDING, persist_to=persist_to, config=config)
        return parse_migrations_output(result)

    def migrations_list(self, *, persist_to: Path, config: Path = WRANGLER_TOML) -> list[str]:
        """`d1 migrations list`: the names wrangler considers pending (unapplied)."""
        result = self.d1("migrations", "list", BINDING, persist_to=persist_to, config=config)
        return parse_migrations_output(result)


def parse_migrations_output(result: Result) -> list[str]:
    """Names in the table after "Migrations to be applied:", or [] after "No migrations to apply!".

    wrangler 4.86 has no --json for `migrations list`/`apply`; it prints either
    "✅ No migrations to apply!" or "Migrations to be applied:" and a box table with one
    `│ <name> │` row per file (apply then prints a second table with a status column).
    Anything else is an error, never an empty list.
    """
    text = result.stdout
    if "No migrations to apply!" in text:
        return []
    marker = text.find("Migrations to be applied:")
    if marker < 0:
        raise WranglerError(f"unrecognised migrations output\n{result.describe()}")
    names: list[str] = []
    for line in text[marker:].splitlines()[1:]:
        line = line.strip()
        if not line or line[0] not in "│|┌├└─+":
            break  # end of the first table
        cells = [c.strip() for c in re.split(r"[│|]", line) if c.strip()]
        if cells and cells[0].endswith(".sql"):
            names.append(cells[0])
    if not names:
        raise WranglerError(f"no migration names found in the table\n{result.describe()}")
    return names


# --- the D1 Worker under `wrangler dev` ----------------------------------------------------------

WORKER_START_S = 60.0  # wrangler dev answers after ~2-3 s; this only catches a hang


@dataclass
class WorkerProcess:
    """The D1 Worker under `wrangler dev --ip 127.0.0.1 --port P --var DREAMTREE_D1_TOKEN:T
    --persist-to DIR` (token None: started without one, to test that it then refuses all)."""

    wrangler: Wrangler
    persist_to: Path
    token: str | None
    port: int = field(default_factory=free_port)
    # workerd's DevTools port: wrangler's default (9229) would let only one instance run at once.
    inspector_port: int = field(default_factory=free_port)
    config: Path = WRANGLER_TOML
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.persist_to.parent / f"wrangler-dev-{self.port}.log"

    def command(self) -> list[str]:
        args = [str(self.wrangler.binary), "dev", "--ip", "127.0.0.1", "--port", str(self.port),
                "--inspector-port", str(self.inspector_port),
                "--persist-to", str(self.persist_to), "-c", str(self.config), "--log-level", "info"]
        if self.token is not None:
            args[2:2] = ["--var", f"DREAMTREE_D1_TOKEN:{self.token}"]
        return args

    def start(self, timeout: float = WORKER_START_S) -> WorkerProcess:
        if self.proc is not None:
            raise WranglerError("already started")
        self.persist_to.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ, **WRANGLER_ENV,
            "WRANGLER_LOG_PATH": str(self.persist_to.parent / "wrangler-logs"),
            # Every `wrangler dev` registers in a dev registry shared by the user's instances and
            # reloads its Worker when that registry changes: another test's instance starting
            # or stopping would then answer "Your worker restarted mid-request" (503). A
            # private registry per instance keeps them apart.
            "WRANGLER_REGISTRY_PATH": str(self.persist_to.parent / f"wrangler-registry-{self.port}"),
            # No reload when a config file changes (the migration tests write their own).
            "WRANGLER_CI_DISABLE_CONFIG_WATCHING": "true",
        }
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.command(), cwd=COMPAT_DIR, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,  # workerd is a child of node: stop both
            )
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        """Until `POST /batch` answers at all (any status: 401 without a token is an answer)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise WranglerError(f"wrangler dev exited with {self.proc.returncode}\n{self.log()}")
            try:
                httpx.post(f"{self.url}/batch", content=b"{}", timeout=1.0)
                return
            except httpx.TransportError:
                time.sleep(0.1)
        self.stop()
        raise WranglerError(f"wrangler dev did not answer within {timeout} s\n{self.log()}")

    def log(self) -> str:
        try:
            return _ANSI.sub("", self.log_path.read_text(encoding="utf-8", errors="replace"))[-4000:]
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM to wrangler and workerd (SIGKILL after 10 s); the state stays on disk."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        stop_group(proc, timeout=10)
        # workerd may outlive node for a moment; wait until the port is free again.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                if s.connect_ex(("127.0.0.1", self.port)) != 0:
                    return
            time.sleep(0.05)

    def post(self, body: Any, *, token: str | None = "", **kw: Any) -> httpx.Response:
        """A raw `POST /batch` (token "" means this worker's own; None sends no Authorization)."""
        headers = dict(kw.pop("headers", None) or {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token or self.token}"
        if "content" not in kw:
            kw["content"] = json.dumps(body).encode()
        return httpx.post(f"{self.url}/batch", headers=headers, timeout=30.0, **kw)


# --- counting round trips -----------------------------------------------------------------------


class RoundTrips:
    """The batches a D1Engine sent, in order, as "read" or "write" (one HTTP request each,
    retries included). `with trips.counting(): ...` or `trips.clear()` to start afresh."""

    def __init__(self) -> None:
        self.modes: list[str] = []
        self.bookmarks: list[str | None] = []  # the bookmark each batch carried

    def clear(self) -> None:
        self.modes.clear()
        self.bookmarks.clear()

    @property
    def reads(self) -> int:
        return self.modes.count("read")

    @property
    def writes(self) -> int:
        return self.modes.count("write")

    def __len__(self) -> int:
        return len(self.modes)

    def assert_read_endpoint(self) -> None:
        """A read endpoint: exactly one round trip (its read, the session check inside it)."""
        assert self.modes == ["read"], f"expected one read round trip, got {self.modes}"

    def assert_write_endpoint(self) -> None:
        """A write endpoint: at most two round trips (reads, then one write batch)."""
        assert len(self.modes) <= 2 and self.writes <= 1, f"expected ≤ 2 round trips (≤ 1 write), got {self.modes}"


class RecordingTransport(httpx.AsyncBaseTransport):
    """Wraps the engine's real transport and notes the mode of every batch it sends."""

    def __init__(self, inner: httpx.AsyncBaseTransport, trips: RoundTrips) -> None:
        self.inner = inner
        self.trips = trips

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            body = json.loads(request.content)
        except ValueError:
            body = {}
        self.trips.modes.append(str(body.get("mode", "?")))
        self.trips.bookmarks.append(body.get("bookmark"))
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


# --- test data ----------------------------------------------------------------------------------


async def wipe(engine: Any) -> None:
    """Delete every row of every ordinary table but the migrations ledger (and D1's `_cf_`
    tables), in one batch: test isolation without restarting wrangler dev. Test-only SQL:
    the table names come from the schema itself, quoted as identifiers."""
    from app.db.engine import Stmt

    (tables,) = await engine.batch([Stmt("PRAGMA table_list")], write=False)
    names = [row["name"] for row in tables.rows
             if row["schema"] == "main" and row["type"] == "table" and row["name"] != "d1_migrations"
             and not row["name"].startswith(("sqlite_", "_cf_"))]
    if names:
        deletes = [Stmt('DELETE FROM "{}"'.format(name.replace('"', '""'))) for name in names]
        await engine.batch([Stmt("PRAGMA defer_foreign_keys = ON"), *deletes], write=True)


# --- the API tests on the d1 engine (the `both_engines` marker; conftest.py) ------------------------

# The rows readers write, children first; `reset` empties exactly these between tests. Custom
# skills are readers' rows too (skills.is_custom = 1); the seeded skills stay.
READER_TABLES = ("exercise_skills", "user_competency_scores", "tool_instances", "exercise_responses",
                 "user_modules", "user_settings", "sessions", "emails", "auth", "users")
# The content the seed loads (workbook, tools, competencies, skills, references): loaded once
# per Worker and left alone while the tests only read it.
CONTENT_TABLES = ("content_sources", "exercise_sequence", "exercise_content", "tool_types", "references",
                  "skills", "competency_levels", "competencies", "personality_types")
_CONTENT_WRITE = re.compile(
    r"^\s*(?:WITH\b.*?\b)?(?:INSERT|UPDATE|DELETE|REPLACE)\b.*?\b(?:" + "|".join(CONTENT_TABLES) + r")\b",
    re.I | re.S)
_WRITE_START = re.compile(r"^\s*(?:INSERT|UPDATE|DELETE|REPLACE|CREATE|DROP|ALTER)\b", re.I)


def _fingerprint_sql() -> str:
    """One row that changes when the seeded content does: row counts (seeded skills only), and
    the newest stamp and active rows of the versioned tables."""
    parts = [f'(SELECT count(*) FROM "{t}"{" WHERE is_custom = 0" if t == "skills" else ""}) AS n_{t}'
             for t in CONTENT_TABLES]
    for t in ("tool_types", "exercise_content"):
        parts.append(f"(SELECT max(updated_at) FROM {t}) AS stamp_{t}")
        parts.append(f"(SELECT total(is_active) FROM {t}) AS active_{t}")
    parts.append("(SELECT total(version) FROM exercise_sequence) AS version_sequence")
    return "SELECT " + ", ".join(parts)


FINGERPRINT = _fingerprint_sql()


class D1Database:
    """The tests' own handle on a Worker's D1 (its migrated database), for fixtures and for
    looking past the API: `batch(statements, write=...)` is one round trip through a
    `D1Engine` (so a failed guard or constraint raises GuardFailed / ConstraintFailed as it
    does on the sqlite file), run on a private event loop so that plain tests can call it.

    `content` is what the seed tables hold: "empty", "small" (tests/fixtures/seed_small),
    "full" (seed/), or None when unknown (a test changed content, or wiped everything)."""

    def __init__(self, worker: WorkerProcess, path: Path) -> None:
        from anyio.from_thread import start_blocking_portal

        from app.db.d1_engine import D1Engine

        assert worker.token is not None
        self.worker = worker
        self.path = path  # the tests' `db_path` for this database (tests.helpers.D1_DATABASES)
        self._portal_cm = start_blocking_portal()
        self.portal = self._portal_cm.__enter__()
        self.engine = self.portal.call(lambda: _make_engine(D1Engine, worker.url, worker.token))
        self.content: str | None = "empty"
        self.fingerprint: tuple[Any, ...] | None = None
        self.reseeds = 0

    def batch(self, statements: Any, *, write: bool) -> list[Any]:
        statements = tuple(statements)
        if write and any(_CONTENT_WRITE.match(s.sql) for s in statements):
            self.content = None  # the next test reseeds
        return self._send(statements, write=write)

    def _send(self, statements: tuple[Any, ...], *, write: bool) -> list[Any]:
        return list(self.portal.call(lambda: self.engine.batch(statements, write=write)))

    def run(self, fn: Any, *args: Any, **kw: Any) -> Any:
        """An async function of the engine, run to completion (`db.run(seeding.seed_on, directory=…)`)."""
        return self.portal.call(lambda: fn(self.engine, *args, **kw))

    def reset(self, content: str, seeds: dict[str, Path]) -> None:
        """Between tests: readers' rows deleted and the content checked in ONE round trip; the
        content tables are emptied and seeded again only when they are not what the test wants."""
        from app.db.engine import Stmt

        applied = sorted(path.name for path in (PROJECT_ROOT / "migrations").glob("*.sql"))
        deletes = [Stmt("DELETE FROM d1_migrations WHERE name NOT IN (SELECT value FROM json_each(?))",
                        (json.dumps(applied),)),  # ledger rows a test added
                   Stmt("DELETE FROM skills WHERE is_custom = 1 OR created_by IS NOT NULL"),
                   *(Stmt(f"DELETE FROM {t}") for t in READER_TABLES)]
        results = self._send((Stmt("PRAGMA defer_foreign_keys = ON"), *deletes, Stmt(FINGERPRINT)), write=True)
        found = tuple(results[-1].rows[0])
        if self.content == content and found == self.fingerprint:
            return
        self.reseed(content, seeds)

    def reseed(self, content: str, seeds: dict[str, Path]) -> None:
        from app.db.engine import Stmt
        from app.domain import seeding

        self.reseeds += 1
        self.content = None
        self._send((Stmt("PRAGMA defer_foreign_keys = ON"), *(Stmt(f'DELETE FROM "{t}"') for t in CONTENT_TABLES)),
                   write=True)
        if content != "empty":
            self.run(seeding.seed_on, directory=seeds[content])
        self.fingerprint = tuple(self._send((Stmt(FINGERPRINT),), write=False)[0].rows[0])
        self.content = content

    def forget_content(self) -> None:
        """Something outside `batch` changed or wiped the content: reseed before the next test."""
        self.content = None

    def close(self) -> None:
        try:
            self.portal.call(self.engine.close)
        finally:
            self._portal_cm.__exit__(None, None, None)


def _make_engine(cls: Any, url: str, token: str | None) -> Any:
    return cls(url, token, timeout=30.0)


class D1Cursor:
    """What `D1Connection.execute` gives: the rows of one statement."""

    def __init__(self, rows: list[Any], changes: int) -> None:
        self._rows = rows
        self.rowcount = changes

    def fetchone(self) -> Any:
        return self._rows.pop(0) if self._rows else None

    def fetchall(self) -> list[Any]:
        rows, self._rows = self._rows, []
        return rows

    def __iter__(self) -> Any:
        return iter(self.fetchall())


class D1Connection:
    """The few `sqlite3.Connection` calls the API tests make to look into or arrange the
    database (execute, executemany, fetchone/fetchall, `with`), on the d1 engine: every call is
    one batch through the Worker, autocommitted like the tests' sqlite connections."""

    row_factory: Any = None

    def __init__(self, db: D1Database) -> None:
        self.db = db

    def execute(self, sql: str, params: Any = ()) -> D1Cursor:
        from app.db.engine import Stmt

        write = bool(_WRITE_START.match(sql)) or "RETURNING" in sql.upper()
        (result,) = self.db.batch([Stmt(sql, tuple(params))], write=write)
        return D1Cursor(list(result.rows), result.changes)

    def executemany(self, sql: str, seq: Any) -> D1Cursor:
        from app.db.engine import Stmt

        statements = [Stmt(sql, tuple(params)) for params in seq]
        results = self.db.batch(statements, write=True) if statements else []
        return D1Cursor([], sum(r.changes for r in results))

    def commit(self) -> None:
        pass

    def rollback(self) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> D1Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def stop_group(proc: subprocess.Popen[Any], timeout: float) -> None:
    """SIGTERM to a process started with `start_new_session=True` and all it started; SIGKILL
    to them all if it has not ended within `timeout` seconds."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass
