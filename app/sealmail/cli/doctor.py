"""``sealmail doctor``: will mail from this host arrive? Problems first, each with its fix."""

from __future__ import annotations

import asyncio
import logging
import textwrap

import click

from sealmail.cli.common import CLIError, Context, common_options

LABELS = {"problem": "PROBLEM", "warning": "WARNING", "ok": "ok"}


@click.command("doctor")
@click.option(
    "--domain", "only_domain", metavar="DOMAIN", help="Check this hosted domain only (the host is always checked)."
)
@click.option(
    "--alert",
    is_flag=True,
    help="The daily run (a systemd timer): log each problem the last run did not have at priority err, "
    "mail them to SEALMAIL_DOCTOR_ALERT_TO (default postmaster@<domain>), remember this run's problems.",
)
@common_options
def doctor(ctx: Context, only_domain: str | None, alert: bool) -> int:
    """Check what decides whether this host's mail arrives, and say what to fix.

    For each public address of the host: its PTR and forward-confirmed reverse DNS against the
    HELO name, the HELO name's own SPF record (RFC 7208 §2.3), and the DNS blocklists; whether outbound port 25 reaches other mail servers; for
    each hosted domain: MX, SPF (this host allowed, at most 10 lookups), DKIM (the published key is
    the one this host signs with), DMARC, MTA-STS (the policy fetched and matching the MX), TLS-RPT
    and the client discovery records; and the certificate of every TLS listener.

    Exits 1 when there is a problem (warnings alone: 0). With --json, the same findings as data,
    each with a stable id.

    With --alert (every domain): the problems new since the last --alert run are logged at priority
    err and mailed once; the run exits 0 when it did that (whatever it found), 1 when it could not
    (the queue refused the report: the next run tries again).
    """
    from sealmail.doctor.run import diagnose

    if alert:
        if only_domain is not None:
            raise click.UsageError("--alert checks every domain: leave out --domain")
        return _alert(ctx)

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


def _alert(ctx: Context) -> int:
    from sealmail import logs
    from sealmail.jobs.doctoralert import run_alert

    logs.configure("doctor", ctx.settings.log_level)
    try:
        run = asyncio.run(run_alert(ctx.settings, ctx.store))
    except Exception as exc:  # the queue or the data directory refused: the next run tries again
        logging.getLogger("sealmail.doctor").error("the daily check could not finish: %s", exc)
        raise CLIError(f"the daily check could not finish: {exc}") from None

    def human() -> None:
        change = run.change
        click.echo(f"{len(change.new)} new problem(s), {len(change.known)} known, {len(change.resolved)} gone")
        for finding in change.new:
            click.echo(f"NEW      {finding.subject}: {finding.statement}")
        if run.mailed_to:
            click.echo(f"mailed to {run.mailed_to}")

    ctx.emit(run.as_dict(), human)
    return 0
