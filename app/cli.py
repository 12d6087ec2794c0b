"""The `dreamtree` command: small click commands, each calling the same functions as the HTTP layer.

Errors a user can cause (a bad file, a wrong path, an unusable setting) end in one line on
stderr, `dreamtree: error: …`, with exit status 1; never a traceback.

Long on purpose: the whole `dreamtree` command in one place. Each command is a thin wrapper
over domain functions with its options and help beside it (the README's command reference is
generated from that help: app/cli_reference.py), and the tests replace this module's helpers,
such as `settings_for`, for every command at once.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, ParamSpec, TypeVar

import click

from app import __version__
from app.config import ConfigError, Settings, check_cpu, check_workers, parse_trusted_proxies, serve_lock_path
from app.db import migrations
from app.db.checks import pending_migrations, verdict_on
from app.db.connection import NotADatabase, connect_sync
from app.db.engine import ChangedConcurrently, Engine, EngineAuthFailed, EngineUnavailable
from app.domain import seeding
from app.domain.errors import DomainError
from app.domain.seeding import SEED_DIR, SeedInvalid

if TYPE_CHECKING:
    import sqlite3

    from granian.server.mp import MPServer

    from app.domain.keys import DataKey
    from app.domain.sessions import ServerKeys

F = TypeVar("F", bound=Callable[..., object])
P = ParamSpec("P")
T = TypeVar("T")


class UserError(Exception):
    """A problem the user can fix; printed as one line."""


def fail(message: str) -> NoReturn:
    click.echo(f"dreamtree: error: {message}", err=True)
    sys.exit(1)


def friendly_errors(fn: Callable[P, T]) -> Callable[P, T]:
    @wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return fn(*args, **kwargs)
        except (UserError, ConfigError, migrations.MigrationError, EngineUnavailable, EngineAuthFailed) as exc:
            fail(str(exc))
        except NotADatabase as exc:
            fail(f"{kwargs.get('db') or 'the database'}: not an SQLite database ({exc})")
        except SeedInvalid as exc:
            for problem in exc.problems:
                click.echo(f"dreamtree: error: {problem}", err=True)
            click.echo(f"dreamtree: {len(exc.problems)} problem(s) in the seed files (paths relative to the seed folder); nothing was written", err=True)
            sys.exit(1)
        except seeding.SeedDependencyMissing as exc:
            fail(str(exc))
        except DomainError as exc:
            fail(exc.detail)

    return wrapper


def db_option(fn: F) -> F:
    return click.option(
        "--db",
        "db",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Database file (default: $DREAMTREE_DB or ./dreamtree.db).",
    )(fn)


def engine_option(fn: F) -> F:
    return click.option(
        "--engine",
        "engine",
        type=click.Choice(["sqlite", "d1"]),
        default=None,
        help="Storage engine (default: $DREAMTREE_ENGINE or sqlite); d1 reads DREAMTREE_D1_URL and DREAMTREE_D1_TOKEN.",
    )(fn)


def settings_for(db: Path | None, **flags: object) -> Settings:
    return Settings.from_env().with_(db_path=db, **flags)


@contextmanager
def open_existing(path: Path, *, strict: bool = True) -> Iterator[sqlite3.Connection]:
    if not path.exists():
        raise UserError(f"{path}: no such database (run `dreamtree migrate --db {path}` to create one)")
    if path.is_dir():
        raise UserError(f"{path}: is a directory, not a database file")
    conn = connect_sync(path, strict=strict)
    try:
        yield conn
    finally:
        conn.close()


def existing_database(db: Path | None) -> Path:
    """The database file the command names, after checking it exists and is SQLite."""
    path = settings_for(db).db_path
    with open_existing(path):
        return path


def require_database(settings: Settings) -> None:
    """On the sqlite engine, fail unless the database file exists (a wrong --db creates nothing);
    on d1 the Worker answers for the database when the command opens it."""
    if _on_sqlite(settings):
        existing_database(settings.db_path)


def run_with_engine(settings: Settings, work: Callable[[Engine], Awaitable[T]]) -> T:
    """Open the configured storage engine, run `await work(engine)` on it, close it.

    Every command that reads or writes readers' data goes through here, so it runs on the
    same engine (and the same domain functions) as the server: the sqlite file, or D1
    through the Worker (`--engine d1` / DREAMTREE_ENGINE=d1; app/db/engines.py)."""
    import asyncio

    from app.db.engines import open_engine

    async def run() -> T:
        engine = await open_engine(settings)
        try:
            return await work(engine)
        finally:
            await engine.close()

    return asyncio.run(run())


def migrate_database(path: Path) -> list[str]:
    """Create the file if needed and apply pending migrations (used by migrate and serve)."""
    if path.is_dir():
        raise UserError(f"{path}: is a directory, not a database file")
    if not path.parent.exists():
        raise UserError(f"{path.parent}: no such directory")
    conn = connect_sync(path)
    try:
        return migrations.apply(conn)
    finally:
        conn.close()


def seed_if_empty(target: Settings | Path, *, directory: Path = SEED_DIR) -> None:
    """A database with no workbook yet gets the sample workbook, once (the README's first command).

    Safe when several processes start at once: the seed's write is guarded, so the ones that
    lose the race find the workbook there and write nothing."""
    settings = target if isinstance(target, Settings) else settings_for(target)

    async def work(engine: Engine) -> seeding.SeedResult | None:
        if not await seeding.is_unseeded(engine):
            return None
        return await seeding.seed_on(engine, directory=directory)

    result = run_with_engine(settings, work)
    if result is not None and result.written:
        click.echo(f"seeded the sample workbook ({result.plan.changes} rows)")


def _on_sqlite(settings: Settings) -> bool:
    return settings.engine == "sqlite"


# The help is laid out for 100 columns whatever the terminal, so that it reads the same on every
# machine and the README's command reference (app/cli_reference.py) can be generated from it.
HELP_WIDTH = 100


@click.group(context_settings={"help_option_names": ["-h", "--help"], "terminal_width": HELP_WIDTH,
                               "max_content_width": HELP_WIDTH})
@click.version_option(__version__, prog_name="dreamtree")
def main() -> None:
    """DreamTree store: the service behind the DreamTree career workbook."""


@main.command()
@db_option
@engine_option
@click.option("--status", is_flag=True, help="List applied and pending migrations; change nothing.")
@friendly_errors
def migrate(db: Path | None, engine: str | None, status: bool) -> None:
    """Apply pending migrations, to the file or through the D1 Worker.

    The ledger is wrangler's (the d1_migrations table), so wrangler and this command agree on
    what is applied. A database file that does not exist yet is created.
    """
    settings = settings_for(db, engine=engine)
    d1 = settings.engine == "d1"
    where = f"D1 via {settings.d1_target()[0]}" if d1 else str(settings.db_path)
    if status:
        if d1:
            state = run_with_engine(settings, migrations.status_on)
        else:
            with open_existing(settings.db_path) as conn:
                state = migrations.status(conn)
        for name in state.applied:
            click.echo(f"applied  {name}")
        for name in state.pending:
            click.echo(f"pending  {name}")
        if not state.pending:
            click.echo("up to date")
        return
    applied = run_with_engine(settings, migrations.apply_on) if d1 else migrate_database(settings.db_path)
    for name in applied:
        click.echo(f"applied {name}")
    click.echo(f"{where}: up to date" if applied else f"{where}: already up to date, nothing applied")


@main.command()
@db_option
@engine_option
@click.option("--dry-run", is_flag=True, help="Print the plan (per table) and write nothing.")
@click.option("--only", type=click.Choice(seeding.SEED_TABLES), metavar="TABLE",
              help=f"Seed one table (its dependencies must be there): {', '.join(seeding.SEED_TABLES)}.")
@click.option(
    "--emit-sql",
    "emit_sql",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the seed as SQL for `wrangler d1 execute --file` instead of touching a database.",
)
@click.option("--seed-dir", type=click.Path(file_okay=False, path_type=Path), default=SEED_DIR, show_default=False,
              help="Folder of seed files (default: the project's seed/).")
@friendly_errors
def seed(db: Path | None, engine: str | None, dry_run: bool, only: str | None, emit_sql: Path | None, seed_dir: Path) -> None:
    """Load the reference data and the workbook from seed/ into the database.

    Idempotent and versioned: safe to re-run on a live database; only rows that differ from the
    files are written, all in one atomic batch. With --emit-sql nothing is touched: the same seed
    is written as SQL for `wrangler d1 execute --file`.
    """
    if emit_sql is not None:
        text = seeding.emit_sql(seed_dir, only=only)
        emit_sql.write_text(text, encoding="utf-8")
        click.echo(f"wrote {emit_sql} ({text.count(chr(10)) - 2} statements)")
        return
    settings = settings_for(db, engine=engine)
    path, on_sqlite = settings.db_path, _on_sqlite(settings)
    if on_sqlite:
        existing_database(path)

    async def work(engine: Engine) -> seeding.SeedResult:
        if await pending_migrations(engine):
            where, migrate = (path, f"dreamtree migrate --db {path}") if on_sqlite else ("D1", "dreamtree migrate --engine d1")
            raise UserError(f"{where}: migrations are pending; run `{migrate}` first")
        return await seeding.seed_on(engine, directory=seed_dir, dry_run=dry_run, only=only)

    try:
        result = run_with_engine(settings, work)
    except ChangedConcurrently:
        raise UserError("the content kept changing while the seed was written (another seed running?); "
                        "nothing was written, run it again") from None
    for line in result.plan.lines():
        click.echo(line)
    if result.plan.changes == 0:
        click.echo("nothing to change: the database already matches the seed files")
    elif dry_run:
        click.echo(f"dry run: {result.plan.changes} change(s) planned, nothing written")
    else:
        click.echo(f"seeded: {result.plan.changes} change(s) written in one atomic batch")


def _server_keys(settings: Settings) -> ServerKeys:
    from app.domain.sessions import ServerKeys

    return ServerKeys.configured(settings.server_secret(), settings.argon2)


def _ask_password(prompt: str, from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return str(click.prompt(prompt, hide_input=True))


def _with_account(settings: Settings, email: str, password: str,
                  work: Callable[[Engine, str, DataKey], Awaitable[T]]) -> T:
    """Open the storage engine, unlock a claimed account's data key with its password, run `work`.

    The CLI has no other way to a reader's key: an anonymous workbook's key lives only in its
    browser cookie, so only claimed accounts can be exported or imported here.
    """
    from app.domain import accounts
    from app.domain.throttle import Throttle

    async def run(engine: Engine) -> T:
        user_id, dek = await accounts.verify_credentials(
            engine, _server_keys(settings), Throttle(enabled=False), email, password)
        return await work(engine, user_id, dek)

    return run_with_engine(settings, run)


def password_stdin_option(command: str, more: str = "") -> Callable[[F], F]:
    """`--password-stdin` of the commands that unlock an account, with `command` in its example."""
    return click.option(
        "--password-stdin", is_flag=True,
        help="Read the account password from the first line of standard input instead of asking for it "
             f"(for scripts: `dreamtree {command} --user EMAIL --password-stdin FILE < password.txt`). Only "
             "the line's ending newline is removed; spaces are part of the password." + more)


@main.command("export")
@db_option
@engine_option
@click.option("--user", "email", required=True, metavar="EMAIL", help="The claimed account's email.")
@password_stdin_option("export")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@friendly_errors
def export_cmd(db: Path | None, engine: str | None, email: str, password_stdin: bool, file: Path) -> None:
    """Write a claimed account's export to FILE, encrypted with its password.

    The file is spec §9's export, format 1.1 (`dreamtree export-schema` prints its JSON Schema).
    Only a claimed account can be exported here: an anonymous workbook's key lives in its
    browser's cookie. The command asks for the account password, or reads it with
    --password-stdin; the same password opens the file again (`dreamtree import`, or the
    import page).
    """
    import msgspec

    from app.domain import portability

    settings = settings_for(db, engine=engine)
    require_database(settings)
    password = _ask_password("Account password", password_stdin)

    async def work(engine: Engine, user_id: str, dek: DataKey) -> portability.ExportDoc:
        return await portability.export_account(engine, user_id, dek, password=password)

    document = _with_account(settings, email, password, work)
    file.write_bytes(msgspec.json.encode(document))
    answers = sum(len(m.exercises) for m in document.modules.values())
    click.echo(f"wrote {file}: {answers} answers, {len(document.tool_instances)} tool entries "
               "(encrypted: the account password opens it)")


@main.command("import")
@db_option
@engine_option
@click.option("--user", "email", required=True, metavar="EMAIL", help="The claimed account that receives the data.")
@password_stdin_option("import", " The same password opens an encrypted FILE, so it must be the one "
                       "the file was exported with.")
@click.option("--dry-run", is_flag=True, help="Report what would change; write nothing.")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@friendly_errors
def import_cmd(db: Path | None, engine: str | None, email: str, password_stdin: bool, dry_run: bool, file: Path) -> None:
    """Merge an export FILE into a claimed account.

    The same merge as the API's import: nothing a reader already has is lost, and the whole
    merge is one write batch. The command asks for the account password, or reads it with
    --password-stdin; with --dry-run it reports what would change and writes nothing.
    """
    import msgspec

    from app.domain import portability

    settings = settings_for(db, engine=engine)
    require_database(settings)
    raw = file.read_bytes()
    try:
        msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise UserError(f"{file}: not valid JSON ({exc})") from None
    password = _ask_password("Account password", password_stdin)

    async def work(engine: Engine, user_id: str, dek: DataKey) -> portability.ImportReport:
        return await portability.import_into(engine, user_id, dek, raw, password=password, dry_run=dry_run, gate=None)

    report = _with_account(settings, email, password, work)
    for kind, c in msgspec.structs.asdict(report.counts).items():
        click.echo(f"{kind:<18} inserted {c.inserted:>5}  updated {c.updated:>5}  "
                   f"unchanged {c.unchanged:>5}  skipped {c.skipped:>5}")
    for warning in report.warnings:
        click.echo(f"warning: {warning}")
    click.echo("dry run: nothing written" if dry_run else "merged in one write batch")


@main.command()
@db_option
@engine_option
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@friendly_errors
def backup(db: Path | None, engine: str | None, file: Path) -> None:
    """Write a consistent snapshot of the database to FILE, online.

    SQLite's backup API: safe while the service serves. The server secret (the database's .key
    file) is not in the snapshot: back it up apart. The sqlite engine only.
    """
    from app.domain import backups

    if not _on_sqlite(settings_for(db, engine=engine)):
        raise UserError(backups.refusal_on_d1("backup"))
    path = existing_database(db)
    if file.exists():
        raise UserError(f"{file} exists; choose a new file name")
    size = backups.backup(path, file)
    click.echo(f"wrote {file} ({size / 2**20:.1f} MiB); the server secret ({path.name}.key) is not in it: back it up apart")


@main.command()
@db_option
@engine_option
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@friendly_errors
def restore(db: Path | None, engine: str | None, file: Path, yes: bool) -> None:
    """Replace the database with the snapshot FILE, once FILE passes every check.

    The checks are `dreamtree check`'s: integrity, foreign keys, migrations and schema. Asks
    before replacing an existing database unless --yes. The sqlite engine only.
    """
    from app.domain import backups

    settings = settings_for(db, engine=engine)
    if not _on_sqlite(settings):
        raise UserError(backups.refusal_on_d1("restore"))
    path = settings.db_path
    if not yes and path.exists() and not click.confirm(f"Replace {path} with {file}?", default=False):
        raise UserError("nothing changed")
    try:
        backups.restore(file, path)
    except backups.RestoreRefused as exc:
        raise UserError(f"{file}: refused, nothing changed: {exc}") from None
    click.echo(f"restored {path} from {file} (integrity, foreign keys, migrations and schema all ok)")


@main.command("export-d1")
@db_option
@engine_option
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@friendly_errors
def export_d1(db: Path | None, engine: str | None, file: Path) -> None:
    """Write the whole database as SQL to FILE, in D1's export format.

    The dump loads into D1 with `wrangler d1 execute --file`, and back into a file with
    `dreamtree import-d1`. The sqlite engine only.
    """
    from app.domain import backups

    if not _on_sqlite(settings_for(db, engine=engine)):
        raise UserError(backups.refusal_on_d1("export-d1"))
    path = existing_database(db)
    count = backups.export_d1(path, file)
    click.echo(f"wrote {file} ({count} statements)")


@main.command("import-d1")
@db_option
@engine_option
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@friendly_errors
def import_d1(db: Path | None, engine: str | None, file: Path) -> None:
    """Load a D1 dump FILE into a new database file.

    FILE is what `wrangler d1 export` or `dreamtree export-d1` writes. Run `dreamtree check`
    on the result before serving it.
    """
    from app.domain import backups

    settings = settings_for(db, engine=engine)
    if not _on_sqlite(settings):
        raise UserError(backups.refusal_on_d1("import-d1"))
    path = settings.db_path
    try:
        count = backups.import_d1(file, path)
    except backups.RestoreRefused as exc:
        raise UserError(str(exc)) from None
    click.echo(f"loaded {count} statements into {path}; run `dreamtree check --db {path}`")


@main.command("export-schema")
def export_schema() -> None:
    """Print the JSON Schema of the export format.

    The schema docs/export-format.schema.json holds.
    """
    import json

    from app.domain.portability import json_schema

    click.echo(json.dumps(json_schema(), indent=2, sort_keys=True))


@main.group()
def users() -> None:
    """Operator commands for readers' accounts."""


@users.command("purge-anonymous")
@db_option
@engine_option
@click.option("--idle-days", type=click.IntRange(min=1), default=90, show_default=True,
              help="Anonymous workbooks not opened for this many days.")
@click.option("--apply", "apply_", is_flag=True, help="Really delete (the default is a dry run).")
@friendly_errors
def purge_anonymous(db: Path | None, engine: str | None, idle_days: int, apply_: bool) -> None:
    """Delete long-idle anonymous workbooks (a dry run without --apply).

    An anonymous workbook nobody has opened for --idle-days days: its cookie, the only key to
    it, is long gone.
    """
    from app.domain import accounts

    settings = settings_for(db, engine=engine)
    require_database(settings)
    count = run_with_engine(settings, lambda engine: accounts.purge_anonymous(engine, idle_days, dry_run=not apply_))
    if apply_:
        click.echo(f"deleted {count} anonymous workbook(s) idle for more than {idle_days} days")
    else:
        click.echo(f"dry run: {count} anonymous workbook(s) idle for more than {idle_days} days "
                   "would be deleted; add --apply to delete them")


@users.command("reset-login")
@db_option
@engine_option
@click.argument("email")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@friendly_errors
def reset_login(db: Path | None, engine: str | None, email: str, yes: bool) -> None:
    """Reset a reader's login when password and recovery code are both lost.

    The last resort: it ERASES what the reader wrote (answers keep their place, their content
    is deleted; tool entries are deleted), ends all their sessions and prints a new one-time
    recovery code, with which they set a new password. Asks first unless --yes.
    """
    from app.domain import accounts
    from app.domain.errors import NotFound

    settings = settings_for(db, engine=engine)
    click.echo(f"This ERASES what {email} wrote (answers keep their place, their content is deleted; tool "
               "entries are deleted). It cannot be undone: without their password or recovery code nobody "
               "can read it anyway.")
    if not yes and not click.confirm("Erase and reset this login?", default=False):
        raise UserError("nothing changed")
    require_database(settings)  # before the server secret: a wrong path creates no key file
    server = _server_keys(settings)
    try:
        result = run_with_engine(settings, lambda engine: accounts.reset_login(engine, server, email))
    except NotFound as exc:
        raise UserError(exc.detail) from None
    click.echo(f"erased {result.erased_answers} answer(s) and {result.erased_tool_instances} tool entr(ies); "
               "all sessions ended")
    click.echo(f"one-time recovery code for the reader (give it to them; it is not stored): {result.recovery_code}")
    click.echo("they set a new password with it on the 'forgot password' page (POST /api/account/recover)")


@main.group()
def skills() -> None:
    """Editor commands for the skills list."""


def _printable(text: str) -> str:
    # Skill names are readers' writing: never let one move the editor's cursor or colour the terminal.
    return "".join(ch if ch.isprintable() else f"\\u{ord(ch):04x}" for ch in text)


@skills.command("review")
@db_option
@engine_option
@click.option("--approve", multiple=True, metavar="ID", help="Approve this custom skill: it joins the shared list (repeatable).")
@click.option("--reject", multiple=True, metavar="ID", help="Reject it: only the reader who wrote it keeps using it (repeatable).")
@click.option("--list", "list_only", is_flag=True, help="Only list the skills waiting for review.")
@friendly_errors
def review_skills(db: Path | None, engine: str | None, approve: tuple[str, ...], reject: tuple[str, ...], list_only: bool) -> None:
    """Approve or reject readers' custom skills waiting for review.

    An approved skill joins the shared list; a rejected one stays only with the reader who
    wrote it (docs/skills.md). Without --approve, --reject or --list, asks for each one.
    """
    from functools import partial

    from app.domain import skills as skill_list

    settings = settings_for(db, engine=engine)
    require_database(settings)
    if approve or reject:
        decided = run_with_engine(settings, partial(skill_list.review, approve=approve, reject=reject))
        for decision in decided:
            click.echo(f"{decision.review_status:<8}  {decision.id}  {_printable(decision.name)}")
        return
    pending = run_with_engine(settings, skill_list.pending_skills)
    click.echo(f"{len(pending)} custom skill(s) waiting for review")
    if list_only or not pending:
        for s in pending:
            click.echo(f"{s.created_at}  {s.id}  {_printable(s.name)}  ({s.category or 'no category'})")
        return
    counts = {"approved": 0, "rejected": 0, "skipped": 0}
    for s in pending:
        click.echo(f"\n{_printable(s.name)}  ({s.category or 'no category'}; {s.id}, added {s.created_at})")
        answer = click.prompt("[a]pprove, [r]eject, [s]kip, [q]uit", type=click.Choice(["a", "r", "s", "q"]),
                              show_choices=False)
        if answer == "q":
            break
        if answer == "s":
            counts["skipped"] += 1
            continue
        approved, rejected = ([s.id], []) if answer == "a" else ([], [s.id])
        try:  # each decision is its own write: quitting half-way keeps the ones made
            run_with_engine(settings, partial(skill_list.review, approve=approved, reject=rejected))
        except DomainError as exc:
            click.echo(f"dreamtree: {exc.detail}", err=True)
            counts["skipped"] += 1
            continue
        counts["approved" if answer == "a" else "rejected"] += 1
    click.echo(f"approved {counts['approved']}, rejected {counts['rejected']}, skipped {counts['skipped']}")


@main.command()
@db_option
@engine_option
@friendly_errors
def check(db: Path | None, engine: str | None) -> None:
    """Check the database: integrity, foreign keys, migrations and schema.

    The integrity check, the foreign-key check, pending migrations and drift from schema.sql;
    exits with status 1 on any problem.
    """
    settings = settings_for(db, engine=engine)
    require_database(settings)
    result = run_with_engine(settings, verdict_on)
    problems = 0
    if result.integrity == ["ok"]:
        click.echo("integrity:    ok" + (" (quick_check)" if result.integrity_pragma == "quick_check" else ""))
    else:
        problems += 1
        click.echo(f"integrity:    FAILED ({len(result.integrity)} problems)")
        for line in result.integrity[:20]:
            click.echo(f"  {line}")
    if result.orphans:
        problems += 1
        click.echo(f"foreign keys: FAILED ({result.orphans} rows point at missing parents)")
    else:
        click.echo("foreign keys: ok")
    if result.pending:
        problems += 1
        click.echo(f"migrations:   FAILED ({len(result.pending)} pending: {', '.join(result.pending)})")
    else:
        click.echo(f"migrations:   ok ({len(result.applied)} applied)")
    if result.drift:
        problems += 1
        click.echo(f"schema:       FAILED ({len(result.drift)} differences from schema.sql)")
        for line in result.drift[:40]:
            click.echo(f"  {line}")
    else:
        click.echo("schema:       ok (matches schema.sql)")
    if problems:
        sys.exit(1)


# The lock of the port this process serves on, held until the process ends (see check_port_free).
_port_lock: int | None = None


def check_port_free(host: str, port: int) -> None:
    """Fail unless nothing listens on host:port, and keep any other `dreamtree serve` off it.

    granian listens with SO_REUSEPORT and has no switch to turn it off, so a second server on a
    busy port would start and silently share its connections with the first (each answering
    from its own database). Two checks, both before the database is touched:

    - a lock file per address (`dreamtree-serve-<address>-<port>.lock` in the temporary
      directory, named by the address the host resolves to), taken with flock and held by this process until it ends: of two servers
      started in the same instant, exactly one gets it (the kernel drops the lock with the
      process, so a killed server leaves nothing to clean up);
    - a plain bind, without SO_REUSEPORT, which fails on a port anything else listens on.
      SO_REUSEADDR keeps a port a stopped server left in TIME_WAIT usable."""
    import errno
    import fcntl
    import os
    import socket

    global _port_lock
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as exc:
        raise UserError(f"{host}: cannot listen on this host ({exc.strerror})") from None
    busy = f"{host}:{port}: address already in use (is another server running there?)"
    # Named by the resolved address, so `localhost` and `127.0.0.1` share one lock.
    path = serve_lock_path(str(address[0]), port)
    try:
        lock = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise UserError(f"{path}: cannot open the serve lock ({exc.strerror})") from None
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(lock)
        raise UserError(busy) from None
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            os.close(lock)
            if exc.errno == errno.EADDRINUSE:
                raise UserError(busy) from None
            raise UserError(f"{host}:{port}: cannot listen there ({exc.strerror})") from None
    _port_lock = lock


def secure_cookie_notice(settings: Settings) -> str | None:
    """A line for operators who bind beyond loopback without saying how readers arrive: cookies
    are Secure only on https requests, and behind a TLS proxy that is not trusted every request
    looks like plain http."""
    if settings.secure_cookies is not None or settings.trusted_proxies:
        return None
    if settings.host in ("127.0.0.1", "::1", "localhost"):
        return None
    return ("note: cookies are Secure only on requests that arrive over https; behind a TLS proxy, "
            "list it with --trusted-proxies (it must send X-Forwarded-Proto) or force Secure with --secure")


WORKER_STOP_GRACE = 30
"""Seconds `serve` gives each worker to stop after SIGTERM before it kills the worker (granian
logs "Killing worker-N after it refused to gracefully stop")."""
WORKER_STOP_RESEND = 2
"""Seconds between the SIGTERMs `serve` sends a worker that has not stopped yet."""


def _granian() -> type[MPServer]:
    """granian's server (its workers are processes), but a SIGTERM that reaches a worker still starting stops it.

    granian installs its own handler of SIGTERM and SIGINT in `serve` before it forks the
    workers, and a worker replaces it only once its app is built: a signal in between ran the
    copied handler, which only tells the forked copy of the server loop to stop, and the worker
    went on starting, then served for good while `serve` waited for it. In a worker (any
    process but the one that installed it), the handler now takes the signal's default action."""
    import os
    import signal
    import time

    from granian.server.mp import MPServer

    class ServingGranian(MPServer):
        def signal_handler_interrupt(self, signum: int, *args: Any) -> None:
            if os.getpid() != self.pid:
                signal.signal(signum, signal.SIG_DFL)
                os.kill(os.getpid(), signum)
                return
            super().signal_handler_interrupt(signum, *args)  # type: ignore[no-untyped-call]

        def _stop_workers(self) -> None:
            """granian sends each worker one SIGTERM; one that lands in the instant after the
            worker's fork is lost (Python clears the signals pending in a new child), and that
            worker went on to serve until the kill timeout. Sent again every RESEND seconds to
            workers still alive, within the grace time; then granian's own stop (join, kill)."""
            deadline = time.monotonic() + WORKER_STOP_GRACE - WORKER_STOP_RESEND
            workers: list[Any] = list(self.wrks)  # granian's wrappers: terminate() marks the stop as asked for
            for worker in workers:
                worker.terminate()
            while time.monotonic() < deadline:
                alive = [worker for worker in workers if worker.is_alive()]
                if not alive:
                    break
                alive[0].join(WORKER_STOP_RESEND)
                for worker in alive:
                    if worker.is_alive():
                        worker.terminate()
            super()._stop_workers()  # type: ignore[no-untyped-call]

    return ServingGranian


@main.command()
@db_option
@engine_option
@click.option("--host", default=None, help="Interface to listen on (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default 8000).")
@click.option(
    "--secure/--insecure",
    "secure_cookies",
    default=None,
    help="Always / never mark cookies Secure (default: Secure when the reader used https, "
         "directly or as a trusted proxy forwards it).",
)
@click.option("--trusted-proxies", default=None, metavar="LIST",
              help="Reverse proxies whose X-Forwarded-For/-Proto are believed: addresses or CIDRs, "
                   "comma-separated (default: $DREAMTREE_TRUSTED_PROXIES, else none).")
@click.option("--no-rate-limits", "no_rate_limits", is_flag=True, help="Turn rate limits off (load tests).")
@click.option("--cpu", default=None, help="Core to run on: auto (default: the last core, one core per worker), none, "
                                          "or a number.")
@click.option("--workers", default=None, metavar="N|auto",
              help="Server processes sharing the port and the database file (default: $DREAMTREE_WORKERS, else 1; "
                   "auto: one per core but one).")
@click.option("--log-level", default="info", type=click.Choice(["debug", "info", "warning", "error"]),
              show_default=True, help="How much the server logs: warning and error also turn off the app's line per request; "
                   "debug adds granian's own access log.")
@friendly_errors
def serve(
    db: Path | None,
    engine: str | None,
    host: str | None,
    port: int | None,
    secure_cookies: bool | None,
    trusted_proxies: str | None,
    no_rate_limits: bool,
    cpu: str | None,
    workers: str | None,
    log_level: str,
) -> None:
    """Migrate the database, seed it if empty, and serve the app.

    The server is granian: one worker by default (--workers), each worker's event loop and
    database threads on a core of their own (--cpu). It stops at once with "address already in use" when something listens on the port. With
    --engine d1 it migrates and seeds through the D1 Worker (docs/d1.md).
    """
    import copy
    import os

    from granian.log import LOGGING_CONFIG

    settings = settings_for(
        db, engine=engine, host=host, port=port, secure_cookies=secure_cookies,
        rate_limits=False if no_rate_limits else None,
        cpu=check_cpu(cpu or os.environ.get("DREAMTREE_CPU") or "auto"),
        workers=check_workers(workers or os.environ.get("DREAMTREE_WORKERS") or "1"),
        access_log=False if log_level in ("warning", "error") else None,
        trusted_proxies=None if trusted_proxies is None else parse_trusted_proxies(trusted_proxies),
    )
    cores = settings.server_cores()  # checked here, applied by the worker (create_app's lifespan)
    check_port_free(settings.host, settings.port)  # before the database is touched
    if settings.engine == "d1":
        database = f"D1 via {settings.d1_target()[0]}"
        # Through the Worker: reachability and the token are checked here, before granian starts.
        applied = run_with_engine(settings, migrations.apply_on)
    else:
        database = str(settings.db_path)
        applied = migrate_database(settings.db_path)
    for name in applied:
        click.echo(f"applied {name}")
    seed_if_empty(settings)  # either engine: an empty database gets the sample workbook, once
    settings.server_secret()  # create or check the key file before the worker starts
    # The worker process builds the app from the environment (create_app reads Settings.from_env).
    os.environ.update(settings.to_env())
    if settings.workers > 1:
        where = f", {settings.workers} workers" + (", each on a core of its own" if cores else "")
    else:
        where = f", event loop on core {min(cores)}" if cores else ""
    click.echo(f"DreamTree store on http://{settings.host}:{settings.port}/ (database {database}{where})")
    if notice := secure_cookie_notice(settings):
        click.echo(f"dreamtree: {notice}", err=True)
    # httpx notes every request it sends at INFO: on d1, one line per batch. Only debug shows them.
    log_config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    log_config["loggers"]["httpx"] = {"level": "DEBUG" if log_level == "debug" else "WARNING"}
    ServingGranian = _granian()
    ServingGranian(
        "app.http.app:create_app",
        factory=True,
        address=settings.host,
        port=settings.port,
        interface="asgi",  # type: ignore[arg-type]
        workers=settings.workers,
        websockets=False,
        log_level=log_level,  # type: ignore[arg-type]
        log_dictconfig=log_config,
        log_access=log_level == "debug",
        workers_kill_timeout=WORKER_STOP_GRACE,
    ).serve()


if __name__ == "__main__":
    main()
