"""``dearmp bounces``: addresses that bounced for good (services/mailer/bounces/), and clearing one
once it works again (its held letters then go on their next retry)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

bounces_app = typer.Typer(help="Bounced addresses and held letters.", no_args_is_help=True)


@bounces_app.command("list")
def list_bounces(
    as_json: Annotated[bool, typer.Option("--json", help="JSON for scripts")] = False,
) -> None:
    """Bounces kept, MPs' addresses flagged with the letters held for each, and how many
    supporters' addresses get no more mail."""
    from services.mailer.reports import bounce_report
    from shared.config import load_settings
    from shared.db import make_engine

    engine = make_engine(load_settings().database_url)
    with engine.connect() as conn:
        report = bounce_report(conn)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    typer.echo(
        f"{report['hard']} hard and {report['soft']} soft bounces kept; "
        f"{report['supporters_flagged']} supporters' addresses get no more mail"
    )
    for t in report["targets_flagged"]:
        refresh = " (the MP data still lists it: dearmp data refresh-mps)"
        typer.echo(
            f"{t['address']}  {t['held']} held  since {t['flagged_at'][:16]}  {t['reason'][:80]}"
            + (refresh if t["refresh_needed"] else "")
        )


@bounces_app.command("clear")
def clear(address: Annotated[str, typer.Argument(help="The address that works again")]) -> None:
    """Send to this address again: letters held for it go on their next retry."""
    from services.mailer.bounces.record import clear_address
    from shared.config import load_settings
    from shared.db import make_engine

    settings = load_settings()
    if not clear_address(make_engine(settings.database_url), settings.secret_key, address):
        typer.echo("dearmp: that address is not flagged", err=True)
        raise typer.Exit(1)
    typer.echo("cleared: letters held for it go on their next retry")
