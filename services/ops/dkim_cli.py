"""``dearmp dkim``: a DKIM key for the mail domain, and the DNS records to publish."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

dkim_app = typer.Typer(help="DKIM: sign every email with your domain's key.", no_args_is_help=True)


@dkim_app.command("keygen")
def keygen(
    key_file: Annotated[Path, typer.Argument(help="Where to write the private key (PEM)")],
    selector: Annotated[str, typer.Option(help="The selector: any label, e.g. the month")],
    domain: Annotated[str, typer.Option(help="Your mail domain (DEARMP_MAIL_DOMAIN)")],
    bits: Annotated[int, typer.Option(help="Key size")] = 2048,
) -> None:
    """Write a new private key (readable by its owner only) and print the DNS records to publish
    and the settings that use it."""
    from shared.dkim import dns_record, generate_key

    if key_file.exists():
        typer.echo(
            f"dearmp: {key_file} exists; choose another file (keys are not replaced)", err=True
        )
        raise typer.Exit(1)
    if bits < 1024 or bits > 4096:
        typer.echo("dearmp: --bits must be between 1024 and 4096 (2048 is usual)", err=True)
        raise typer.Exit(1)
    if not selector.replace("-", "").isalnum() or not domain.count("."):
        typer.echo(
            "dearmp: --selector is letters, digits and '-'; --domain a domain name", err=True
        )
        raise typer.Exit(1)
    key = generate_key(bits)
    try:
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        typer.echo(f"dearmp: cannot write {key_file}: {exc.strerror}", err=True)
        raise typer.Exit(1) from None
    with os.fdopen(fd, "wb") as out:
        out.write(key)
    record = dns_record(key)
    typer.echo(f"wrote {key_file}\n")
    typer.echo("Publish in DNS (TXT records):")
    typer.echo(f'  {selector}._domainkey.{domain}  "{record}"')
    typer.echo(f'  {domain}  "v=spf1 ip4:<your mail server\'s address> -all"   (SPF)')
    typer.echo(f'  _dmarc.{domain}  "v=DMARC1; p=quarantine; rua=mailto:dmarc@{domain}"\n')
    typer.echo("Then set:")
    typer.echo(f"  DEARMP_DKIM_SELECTOR={selector}")
    typer.echo(f"  DEARMP_DKIM_PRIVATE_KEY_FILE={key_file.resolve()}")
    typer.echo(f"  DEARMP_DKIM_DOMAIN={domain}")
