"""Helpers for the tests that run Cloudflare's wrangler against its local D1 (`pytest -m d1`).

wrangler is pinned in wrangler-compat/ (package.json + package-lock.json; `npm ci` there).
Every call here is `wrangler d1 … --local --persist-to DIR -c CONFIG`: a throw-away state
directory per test, nothing ever sent to Cloudflare, and no prompt (CI=true makes wrangler
auto-confirm `migrations apply`). See docs/d1.md.

Without node_modules the D1 tests skip on a developer machine, but fail when the CI
environment variable is set, so CI can never pass by silently skipping them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import shutil
import signal
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
COMPAT_DIR = PROJECT_ROOT / "wrangler-compat"
WRANGLER_TOML = COMPAT_DIR / "wrangler.toml"
WRANGLER_BIN = COMPAT_DIR / "node_modules" / ".bin" / ("wrangler.cmd" if os.name == "nt" else "wrangler")
BINDING = "DB"
TIMEOUT_S = 120.0  # one wrangler call takes ~2 s; this only catches a hang

# Where miniflare keeps local D1 databases under --persist-to (research/d1.md §3.3).
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
    """miniflare's durableObjectNamespaceIdFromName for D1 (research/d1.md §3.3); wrangler internals."""
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
