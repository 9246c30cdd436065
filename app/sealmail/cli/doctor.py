"""``sealmail doctor``: will mail from this host arrive? Problems first, each with its fix."""

from __future__ import annotations

import asyncio
import textwrap

import click

from sealmail.cli.common import Context, common_options

LABELS = {"problem": "PROBLEM", "warning": "WARNING", "ok": "ok"}


@click.command("doctor")
@click.option(
    "--domain", "only_domain", metavar="DOMAIN", help="Check this hosted domain only (the host is always checked)."
)
@common_options
def doctor(ctx: Context, only_domain: str | None) -> int:
    """Check what decides whether this host's mail arrives, and say what to fix.

    For each public address of the host: its PTR and forward-confirmed reverse DNS against the
    HELO name, and the DNS blocklists; whether outbound port 25 reaches other mail servers; for
    each hosted domain: MX, SPF (this host allowed, at most 10 lookups), DKIM (the published key is
    the one this host signs with), DMARC, MTA-STS (the policy fetched and matching the MX), TLS-RPT
    and the client discovery records; and the certificate of every TLS listener.

    Exits 1 when there is a problem (warnings alone: 0). With --json, the same findings as data,
    each with a stable id.
    """
    from sealmail.doctor.run import diagnose

    report = asyncio.run(diagnose(ctx.settings, ctx.store, only_domain=only_domain))

    def human() -> None:
        click.echo(f"host: {report.helo} (the name it gives in HELO)")
        if report.addresses:
            click.echo(f"addresses: {', '.join(report.addresses)} ({report.addresses_said})")
        else:
            click.echo("addresses: none known")
        click.echo(f"domains: {', '.join(report.domains) or 'none hosted'}")
        click.echo()
        for finding in report.findings:
            label = LABELS[finding.severity]
            click.echo(f"{label:<8} {finding.subject}: {finding.statement}")
            if finding.fix:
                click.echo(textwrap.fill(finding.fix, 100, initial_indent="         fix: ", subsequent_indent=" " * 14))
        click.echo()
        click.echo(
            f"{len(report.problems)} problem(s), {len(report.warnings)} warning(s), {len(report.passed)} passed "
            f"({report.seconds:.1f} s)"
        )

    ctx.emit(report.as_dict(), human)
    return report.exit_code
