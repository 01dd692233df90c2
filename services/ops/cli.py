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

from services.ops.bounces_cli import bounces_app
from services.ops.dkim_cli import dkim_app
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
letters_app = typer.Typer(help="Emails the mailer sent, or could not send.", no_args_is_help=True)
supporters_app = typer.Typer(help="Supporters' personal data.", no_args_is_help=True)
app.add_typer(letters_app, name="letters")
app.add_typer(supporters_app, name="supporters")
app.add_typer(dkim_app, name="dkim")
app.add_typer(bounces_app, name="bounces")

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
    bounces = "bounces"  # the mailer's bounce receiver (services/mailer/bounces/serve.py)


MODULES = {Service.bounces: "services.mailer.bounces.serve"}


@serve_app.callback(invoke_without_command=True)
def serve_default(ctx: typer.Context) -> None:
    pass


def _serve(name: Service, threads: int) -> None:
    import importlib

    settings = settings_or_exit()
    configure(name.value, settings)
    # Each service wires itself (adapters, consumers, periodic jobs) in services/<name>/serve.py.
    module = MODULES.get(name, f"services.{name.value}.serve")
    importlib.import_module(module).serve(settings, threads)


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
    from services.resolver.backends import make_backends
    from services.resolver.lookup import Unavailable, resolve
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
            dissolved_from=settings.dissolved_from,
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
    from services.ops.status import collect_status, render_status

    settings = settings_or_exit()
    report = collect_status(settings)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        typer.echo(render_status(report, color=sys.stdout.isatty()))


@letters_app.command("failed")
@friendly_errors
def letters_failed(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON array")] = False,
    campaign: Annotated[str | None, typer.Option(help="Only this campaign")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first")] = 100,
) -> None:
    """Emails the SMTP server refused for good (5xx), with the reason; addresses masked."""
    from services.mailer.reports import failed_letters, render_failed
    from shared.db import make_engine

    settings = settings_or_exit()
    rows = failed_letters(make_engine(settings.database_url), campaign=campaign, limit=limit)
    typer.echo(json.dumps(rows, indent=2) if as_json else render_failed(rows))


@supporters_app.command("erase")
@friendly_errors
def supporters_erase(
    email: str,
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait for every service to say what it removed")
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait with --wait")] = 60.0,
) -> None:
    """Remove a supporter's personal data from every service (through an event)."""
    from services.intake.ratelimit import forget_rate_limits
    from shared.broker.dlq import BrokerUnavailable, drop_messages_about
    from shared.db import make_engine
    from shared.erasure import request_erasure, services_that_erase, wait_for_answers
    from shared.supporters import mask_email
    from shared.topology import Topology

    if "@" not in email.strip(" @"):
        fail(f"{email!r} is not an email address")
    settings = settings_or_exit()
    engine = make_engine(settings.database_url)
    request_id, events = request_erasure(engine, email, settings.secret_key)
    forgotten = forget_rate_limits(engine, settings.secret_key, email)
    services = services_that_erase()
    typer.echo(
        f"requested erasure of {mask_email(email)} (request {request_id}) from "
        f"{', '.join(services)}"
    )
    typer.echo(f"outbox: removed events {events}; rate limits: removed {forgotten}")
    try:
        dropped = drop_messages_about(
            settings.amqp_url, Topology(settings.broker_namespace), email, settings.retry_delays
        )
    except BrokerUnavailable:
        typer.echo("queues: RabbitMQ unavailable; run the erasure again to clear them")
    else:
        listed = ", ".join(f"{q} {n}" for q, n in sorted(dropped.items())) or "none"
        typer.echo(f"queues: removed messages {sum(dropped.values())} ({listed})")
    if not wait:
        typer.echo("each service removes the supporter's data when it handles the request")
        return
    got = wait_for_answers(engine, request_id, timeout)
    for service in services:
        if service in got:
            removed = ", ".join(f"{table} {n}" for table, n in sorted(got[service].items()))
            typer.echo(f"{service}: removed {removed}")
        else:
            typer.echo(f"{service}: no answer yet")
    missing = [s for s in services if s not in got]
    if missing:
        fail(
            f"no answer after {timeout:g}s from {', '.join(missing)} (are they and the relay "
            "running?); the request stays queued and will be handled"
        )


@supporters_app.command("export")
@friendly_errors
def supporters_export(
    email: str,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of readable text")] = False,
) -> None:
    """Everything Dear MP holds about a person (subject access): signatures, emails with the
    letters' bodies while kept, subscriptions, update emails, help requests, held signatures."""
    from services.intake.admin.access import held_about
    from shared.db import make_engine

    if "@" not in email.strip(" @"):
        fail(f"{email!r} is not an email address")
    settings = settings_or_exit()
    record = held_about(make_engine(settings.database_url), email, settings.secret_key)
    if as_json:
        typer.echo(json.dumps(record, indent=2, ensure_ascii=False, default=str))
        return
    for section, rows in record.items():
        typer.echo(f"{section.replace('_', ' ')}: {len(rows)}")
        for row in rows:
            for key, value in row.items():
                if value not in (None, "", [], {}):
                    typer.echo(f"    {key}: {value}")
            typer.echo("")


# --- staff accounts and dead letters -------------------------------------------------------
staff_app = typer.Typer(help="Staff accounts for the /admin pages.", no_args_is_help=True)
dlq_app = typer.Typer(help="Dead-letter queues: list and replay.", no_args_is_help=True)
app.add_typer(staff_app, name="staff")
app.add_typer(dlq_app, name="dlq")


@staff_app.command("add")
@friendly_errors
def staff_add(
    email: str,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input")
    ] = False,
    update: Annotated[
        bool, typer.Option("--update", help="Set a new password for an existing account")
    ] = False,
    org: Annotated[
        str | None,
        typer.Option("--org", help="The organisation (slug); without it: a platform operator"),
    ] = None,
    role: Annotated[
        str | None,
        typer.Option(help="In an organisation: owner, editor or viewer (default viewer)"),
    ] = None,
) -> None:
    """Add a staff account (asks for the password twice): a platform operator, or with --org an
    account of that organisation only."""
    from services.intake.admin.accounts import (
        AccountExists,
        StaffError,
        add_staff,
        checked_email,
        checked_role,
    )

    try:
        checked_email(email)
        checked_role(role, org)
    except StaffError as exc:
        fail(str(exc))
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    settings = settings_or_exit()
    try:
        typer.echo(
            add_staff(
                _engine(),
                email,
                password,
                update=update,
                organisation=org,
                role=role,
                secret=settings.secret_key,
            )
        )
    except AccountExists as exc:
        fail(f"{exc} (use --update to set a new password)")
    except StaffError as exc:
        fail(str(exc))


def _engine() -> Any:
    from shared.db import make_engine

    return make_engine(settings_or_exit().database_url)


@staff_app.command("list")
@friendly_errors
def staff_list(
    org: Annotated[str | None, typer.Option("--org", help="Only this organisation")] = None,
) -> None:
    """Staff accounts: email, organisation, role."""
    from services.intake.admin.accounts import list_staff

    with _engine().connect() as conn:
        accounts = list_staff(conn, org)
    if not accounts:
        typer.echo("no staff accounts" + (f" in {org}" if org else ""))
    for a in accounts:
        typer.echo(f"{a.email}  {a.organisation or '-'}  {a.role}")


@staff_app.command("remove")
@friendly_errors
def staff_remove(
    email: str,
    org: Annotated[
        str | None,
        typer.Option("--org", help="The organisation whose account it is, if it has several"),
    ] = None,
) -> None:
    """Remove a staff account; its sessions end. An organisation's last owner stays. Without
    --org: the address's platform operator account, else its only account."""
    from services.intake.admin.accounts import StaffError, checked_email, remove_staff

    try:
        checked_email(email)
        with _engine().begin() as conn:
            removed = remove_staff(conn, email=email, organisation=org)
    except StaffError as exc:
        fail(str(exc))
    if removed is None:
        where = f" in {org}" if org else ""
        fail(f"no staff account {email.strip().lower()!r}{where}")
    typer.echo(f"removed staff account {removed}")


@staff_app.command("unlock")
@friendly_errors
def staff_unlock(email: str) -> None:
    """Clear an account's wrong-password waits from every place: it may sign in again at once."""
    from services.intake.admin.accounts import StaffError, unlock_staff

    settings = settings_or_exit()
    try:
        typer.echo(unlock_staff(_engine(), settings.secret_key, email))
    except StaffError as exc:
        fail(str(exc))


# --- organisations ------------------------------------------------------------------------
orgs_app = typer.Typer(help="Organisations that run campaigns.", no_args_is_help=True)
app.add_typer(orgs_app, name="orgs")


@orgs_app.command("add")
@friendly_errors
def orgs_add(
    slug: Annotated[str, typer.Argument(help="Its short name in addresses: ecpat-uk")],
    name: Annotated[str, typer.Option("--name", help="Its name: ECPAT UK")],
    privacy_url: Annotated[
        str, typer.Option("--privacy-url", help="Its privacy notice (https://…)")
    ] = "",
    privacy_text_file: Annotated[
        Path | None,
        typer.Option("--privacy-text-file", help="Or its privacy notice's text", dir_okay=False),
    ] = None,
    sender_name: Annotated[
        str, typer.Option("--sender-name", help='Emails come from it (default "NAME via Dear MP")')
    ] = "",
    logo_url: Annotated[str, typer.Option("--logo-url", help="https://…")] = "",
    colour: Annotated[str, typer.Option("--colour", help="#rrggbb")] = "",
    website: Annotated[str, typer.Option("--website", help="https://…")] = "",
    list_opt_in: Annotated[
        str,
        typer.Option(
            "--list-opt-in",
            help="The wording of an opt-in to its own mailing list on its campaigns' forms",
        ),
    ] = "",
    update: Annotated[bool, typer.Option("--update", help="Change an existing one")] = False,
) -> None:
    """Add an organisation (with --update, change one: every detail is replaced)."""
    from shared.organisations import OrganisationError, checked, save_organisation

    try:
        org = checked(
            slug=slug,
            name=name,
            privacy_url=privacy_url,
            privacy_text=privacy_text_file.read_text(encoding="utf-8") if privacy_text_file else "",
            sender_name=sender_name,
            logo_url=logo_url,
            colour=colour,
            website=website,
            list_opt_in=list_opt_in,
        )
        with _engine().begin() as conn:
            typer.echo(save_organisation(conn, org, update=update))
    except OrganisationError as exc:
        fail(str(exc))


@orgs_app.command("list")
@friendly_errors
def orgs_list() -> None:
    """Organisations: slug, name, how many campaigns."""
    from shared.organisations import list_organisations

    with _engine().connect() as conn:
        for org in list_organisations(conn):
            typer.echo(f"{org['slug']}  {org['name']}  campaigns={org['campaigns']}")


def _dlq_service(queue: str) -> tuple[Settings, Any, str]:
    from shared.broker.dlq import UnknownQueue, service_for
    from shared.topology import Topology

    settings = settings_or_exit()
    topology = Topology(settings.broker_namespace)
    try:
        return settings, topology, service_for(queue, topology)
    except UnknownQueue as exc:
        fail(str(exc), 2)
        raise


def _dlq_errors(func: F) -> F:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import pika.exceptions

        from shared.broker.dlq import BrokerUnavailable, QueueMissing, ReplayStopped

        try:
            return func(*args, **kwargs)
        except (BrokerUnavailable, QueueMissing, ReplayStopped) as exc:
            fail(
                f"{exc} (DEARMP_AMQP_URL, DEARMP_BROKER_NAMESPACE)"
                if isinstance(exc, BrokerUnavailable)
                else str(exc)
            )
        except (pika.exceptions.AMQPError, OSError) as exc:
            fail(f"RabbitMQ failed: {type(exc).__name__}; nothing was lost")

    return wrapper  # type: ignore[return-value]


@dlq_app.command("list")
@_dlq_errors
def dlq_list(
    queue: Annotated[str, typer.Argument(help="A service (mailer) or its queue name")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON array")] = False,
    limit: Annotated[int | None, typer.Option(help="At most this many, oldest first")] = None,
) -> None:
    """One line per dead-lettered message: event id, type, attempts, error."""
    from shared.broker.dlq import list_dead_letters
    from shared.supporters import mask_addresses

    settings, topology, service = _dlq_service(queue)
    _depth, letters = list_dead_letters(settings.amqp_url, topology, service, limit=limit)
    rows = [{**m.as_json(), "error": mask_addresses(m.error)} for m in letters]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo(f"no dead letters in {topology.dead_letter_queue(service)}")
    for r in rows:
        typer.echo(
            f"{r['event_id']}  {r['type']}  attempts={r['attempts']}  "
            f"{(r['dead_lettered_at'] or '')[:19]}  {r['error'][:200]}"
        )


@dlq_app.command("replay")
@_dlq_errors
def dlq_replay(
    queue: Annotated[str, typer.Argument(help="A service (mailer) or its queue name")],
) -> None:
    """Move every dead-lettered message back to the service's queue, to be tried afresh."""
    from shared.broker.dlq import replay

    settings, topology, service = _dlq_service(queue)
    moved = replay(settings.amqp_url, topology, service)
    typer.echo(
        f"moved {moved} messages from {topology.dead_letter_queue(service)} "
        f"to {topology.queue(service)}"
    )


# --- campaign updates ---------------------------------------------------------------------
updates_app = typer.Typer(help="Campaign updates for subscribers.", no_args_is_help=True)
app.add_typer(updates_app, name="updates")


@updates_app.command("publish")
@friendly_errors
def updates_publish(
    slug: Annotated[str, typer.Argument(help="The campaign")],
    title: Annotated[str, typer.Option("--title", help="The update's title")],
    body_file: Annotated[
        Path, typer.Option("--body-file", help="The update's text, in markdown", dir_okay=False)
    ],
    email: Annotated[
        bool, typer.Option("--email/--no-email", help="Also email the campaign's subscribers")
    ] = True,
    wait: Annotated[
        bool, typer.Option("--wait/--no-wait", help="Show the emails' progress until done")
    ] = True,
) -> None:
    """Publish "Update #N" on the campaign page and email it to subscribers (with a progress bar)."""
    from services.intake.admin.publishing import PublishError, publish_update
    from services.updates.progress import NotStarted, follow
    from shared.db import make_engine

    body = body_file.read_text(encoding="utf-8")
    settings = settings_or_exit()
    engine = make_engine(settings.database_url)
    try:
        with engine.begin() as conn:
            number = publish_update(conn, slug, title, body, email_subscribers=email)
    except PublishError as exc:
        fail(str(exc))
    typer.echo(f"published update #{number} of {slug}")
    if not email:
        typer.echo("not emailed (--no-email)")
        return
    if not wait:
        typer.echo("the updates service emails it to the campaign's subscribers")
        return
    try:
        done = follow(engine, slug, number)
    except NotStarted as exc:
        fail(str(exc))
    summary = f"emailed {done.sent} subscribers"
    if done.skipped:
        summary += f", skipped {done.skipped} who had unsubscribed"
    if done.failed:
        summary += f", {done.failed} refused by the mail server"
    if done.possible_duplicates:
        summary += f" ({done.possible_duplicates} may have got it twice after a crash)"
    typer.echo(summary)


# --- webhooks -----------------------------------------------------------------------------
webhooks_app = typer.Typer(
    help="Organisations' webhook endpoints (signed POSTs of their events).", no_args_is_help=True
)
app.add_typer(webhooks_app, name="webhooks")


@webhooks_app.command("add")
@friendly_errors
def webhooks_add(
    organisation: Annotated[str, typer.Argument(help="The organisation's slug")],
    url: Annotated[str, typer.Argument(help="The endpoint: https://…")],
) -> None:
    """Register an endpoint; prints its secret, once (it signs every delivery)."""
    from shared.webhooks import WebhookError, add_endpoint

    settings = settings_or_exit()
    try:
        with _engine().begin() as conn:
            endpoint, secret = add_endpoint(
                conn, organisation, url, allow_http_localhost=settings.webhooks_allow_http_localhost
            )
    except WebhookError as exc:
        fail(str(exc))
    typer.echo(f"added endpoint {endpoint.id} for {organisation}: {endpoint.url}")
    typer.echo(f"secret (shown once, keep it in the receiving system): {secret}")


@webhooks_app.command("list")
@friendly_errors
def webhooks_list(
    organisation: Annotated[
        str | None, typer.Option("--org", help="Only this organisation's")
    ] = None,
) -> None:
    """Endpoints: id, organisation, address (never the secret)."""
    from shared.webhooks import list_endpoints

    with _engine().connect() as conn:
        for endpoint in list_endpoints(conn, organisation):
            typer.echo(f"{endpoint.id}  {endpoint.organisation}  {endpoint.url}")


@webhooks_app.command("remove")
@friendly_errors
def webhooks_remove(
    endpoint_id: Annotated[str, typer.Argument(help="The endpoint's id (dearmp webhooks list)")],
) -> None:
    """Remove an endpoint and its deliveries (nothing more goes to it)."""
    from shared.webhooks import remove_endpoint

    if not endpoint_id.isdigit():
        fail(f"the endpoint id is a number (dearmp webhooks list), not {endpoint_id[:40]!r}")
    with _engine().begin() as conn:
        if not remove_endpoint(conn, int(endpoint_id), None):
            fail(f"no endpoint {endpoint_id} (dearmp webhooks list)")
    typer.echo(f"removed endpoint {endpoint_id}")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
