"""The ``dearmp`` command line. Each service adds its own sub-commands.

Every command reads ``DEARMP_*`` settings; an error prints one line and exits non-zero.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from sqlalchemy.exc import OperationalError

from shared.config import ConfigError, Settings, load_settings

app = typer.Typer(
    help="Dear MP: email-your-MP campaigns.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
serve_app = typer.Typer(help="Run a service.", no_args_is_help=True)
db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)
campaigns_app = typer.Typer(help="Campaign definitions.", no_args_is_help=True)
data_app = typer.Typer(help="Reference data: postcodes, constituencies, MPs.", no_args_is_help=True)
app.add_typer(serve_app, name="serve")
app.add_typer(db_app, name="db")
app.add_typer(campaigns_app, name="campaigns")
app.add_typer(data_app, name="data")

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = 1) -> None:
    typer.echo(f"dearmp: {message}", err=True)
    raise typer.Exit(code)


def friendly_errors(func: F) -> F:
    """Turn expected failures into one line on stderr and a non-zero exit."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from services.resolver.importers import ImportError_
        from shared.campaigns import CampaignError

        try:
            return func(*args, **kwargs)
        except ConfigError as exc:
            fail(f"configuration: {exc}", 2)
        except (CampaignError, ImportError_) as exc:
            fail(str(exc))
        except FileNotFoundError as exc:
            fail(f"no such file: {exc.filename}")
        except OperationalError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else "unreachable"
            if "does not exist" in reason:
                fail(f"database: {reason}; run 'dearmp db upgrade' first")
            fail(
                f"cannot reach the database (DEARMP_DATABASE_URL): {reason[:120]}; start "
                "PostgreSQL with 'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start'"
            )

    return wrapper  # type: ignore[return-value]


def settings_or_exit() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        fail(f"configuration: {exc}", 2)
        raise  # unreachable


def configure(service: str, settings: Settings) -> None:
    from shared.logging import configure_logging

    configure_logging(service, settings.log_level)


class Service(str, Enum):
    intake = "intake"
    resolver = "resolver"
    mailer = "mailer"
    updates = "updates"
    relay = "relay"


@serve_app.callback(invoke_without_command=True)
def serve_default(ctx: typer.Context) -> None:
    pass


def _serve(name: Service, threads: int) -> None:
    settings = settings_or_exit()
    configure(name.value, settings)
    from shared.db import make_engine
    from shared.handling import transactional
    from shared.worker import run_worker

    if name is Service.intake:
        from services.intake.serve import serve

        serve(settings)
        return
    if name is Service.relay:
        from services.relay import run_relay

        run_relay(settings, threads=threads)
        return
    engine = make_engine(settings.database_url, pool_size=max(5, threads * 2))
    if name is Service.mailer:
        from services.mailer.handlers import bootstrap

        run_worker("mailer", settings, engine, lambda: bootstrap(settings, engine), threads)
    elif name is Service.resolver:
        from services.resolver.handlers import bootstrap as resolver
        from services.resolver.handlers import make_deps, retry_held

        sweeper = make_deps(settings, engine)
        run_worker(
            "resolver",
            settings,
            engine,
            lambda: resolver(settings, engine),
            threads,
            periodic=[(settings.held_sweep_seconds, lambda: retry_held(sweeper))],
        )
    else:
        from services.updates.handlers import HANDLERS as UPDATES

        run_worker(
            "updates", settings, engine, lambda: transactional("updates", engine, UPDATES), threads
        )


for _svc in Service:

    def _make(svc: Service) -> Callable[..., None]:
        def command(
            threads: Annotated[
                int,
                typer.Option(
                    help="Consumer threads, each with its own connection "
                    "(workers and relay; intake scales by replicas)"
                ),
            ] = 1,
        ) -> None:
            _serve(svc, threads)

        command.__doc__ = f"Run the {svc.value} service."
        return command

    serve_app.command(_svc.value)(friendly_errors(_make(_svc)))


@db_app.command("upgrade")
@friendly_errors
def db_upgrade() -> None:
    """Apply database migrations (alembic upgrade head)."""
    from shared.db import ensure_database, upgrade

    settings = settings_or_exit()
    if ensure_database(settings.database_url):
        typer.echo("created the database")
    upgrade(settings.database_url)
    typer.echo("database is up to date")


@campaigns_app.command("load")
@friendly_errors
def campaigns_load(path: Path) -> None:
    """Validate and load campaign YAML files (a file or a directory of them)."""
    from shared.campaigns import campaign_files, read_campaign_file, save_campaign
    from shared.db import make_engine

    settings = settings_or_exit()
    files = campaign_files(path)
    if not files:
        fail(f"{path}: no campaign files (*.yaml) found")
    loaded = [read_campaign_file(f) for f in files]  # validate all before loading any
    engine = make_engine(settings.database_url)
    with engine.begin() as conn:
        for campaign in loaded:
            save_campaign(conn, campaign)
    for campaign in loaded:
        typer.echo(f"loaded campaign {campaign.slug}: {campaign.title}")


def _import(kind: str, path: Path, quiet: bool) -> None:
    from services.resolver import importers
    from shared.db import make_engine

    settings = settings_or_exit()
    engine = make_engine(settings.database_url)
    func = {
        "onspd": importers.import_onspd,
        "constituencies": importers.import_constituencies,
        "mps": importers.import_mps,
    }[kind]
    count = func(engine, path, quiet=quiet)
    typer.echo(f"imported {count} rows from {path}")


Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar")]


@data_app.command("import-onspd")
@friendly_errors
def import_onspd(path: Path, quiet: Quiet = False) -> None:
    """Import an ONS Postcode Directory / NSPL CSV (replaces the postcode table atomically)."""
    _import("onspd", path, quiet)


@data_app.command("import-constituencies")
@friendly_errors
def import_constituencies(path: Path, quiet: Quiet = False) -> None:
    """Import constituency names: JSON {code: name} or CSV code,name."""
    _import("constituencies", path, quiet)


@data_app.command("import-mps")
@friendly_errors
def import_mps(path: Path, quiet: Quiet = False) -> None:
    """Import the public MP lookup CSV."""
    _import("mps", path, quiet)


@app.command("resolve")
@friendly_errors
def resolve_cmd(postcode: str, campaign: Annotated[str | None, typer.Option()] = None) -> None:
    """Print, as JSON, the target a postcode resolves to (exit 3 if no backend could be asked)."""
    from services.resolver.lookup import Unavailable, make_backends, resolve
    from shared import postcodes
    from shared.campaigns import get_campaign
    from shared.db import make_engine

    settings = settings_or_exit()
    engine = make_engine(settings.database_url)
    with engine.connect() as conn:
        found = get_campaign(conn, campaign) if campaign else None
    if campaign and found is None:
        fail(f"no campaign {campaign!r}")
    try:
        backends = make_backends(
            settings.resolver_backends,
            engine,
            postcodes_io_url=settings.postcodes_io_url,
            members_api_url=settings.members_api_url,
        )
    except ValueError as exc:
        fail(f"configuration: DEARMP_RESOLVER_BACKENDS: {exc}", 2)
    try:
        answer = resolve(postcode, found, backends)
    except Unavailable as exc:
        typer.echo(
            json.dumps(
                {
                    "status": "retry",
                    "reason": "backends_unavailable",
                    "postcode": postcodes.normalise(postcode),
                    "constituency": None,
                    "target": None,
                }
            )
        )
        fail(f"no backend could answer: {exc}", 3)
    typer.echo(json.dumps(answer.as_json()))


@data_app.command("refresh-mps")
@friendly_errors
def refresh_mps(quiet: Quiet = False) -> None:
    """Refresh MPs' names and emails from the Members API (after by-elections)."""
    from services.resolver.lookup import BackendUnavailable
    from services.resolver.refresh import refresh_mps as run_refresh
    from shared.db import make_engine

    settings = settings_or_exit()
    try:
        summary = run_refresh(
            make_engine(settings.database_url), settings.members_api_url, quiet=quiet
        )
    except BackendUnavailable as exc:
        fail(f"the Members API is unavailable ({exc}); nothing was changed")
    typer.echo(summary)


@app.command("status")
@friendly_errors
def status_cmd(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Queue depths and consumers, dead letters, outbox backlog, letters by state."""
    from services.status import collect_status, render_status

    settings = settings_or_exit()
    report = collect_status(settings)
    typer.echo(json.dumps(report, indent=2) if as_json else render_status(report))


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
