"""``sealmail status``: is everything running, is mail flowing, and what went wrong lately."""

from __future__ import annotations

from dataclasses import asdict

import click

from sealmail.cli.common import Context, common_options


@click.command("status")
@common_options
def status(ctx: Context) -> None:
    """Components, the outbound queue, and problems of the last 24 hours, in plain words."""
    from sealmail.services.status import collect

    found = collect(ctx.store, ctx.settings)

    def human() -> None:
        click.echo(f"domains: {found.domains}   aliases: {found.aliases}")
        if found.draining:
            click.echo("DRAINING: new connections are turned away (sealmail drain off takes them again)")
        for name, info in found.components.items():
            state = "running" if info.get("running") else "not running"
            ports = " ".join(f"{k}={v}" for k, v in (info.get("ports") or {}).items())
            if ports and info.get("addresses"):
                ports += f" on {','.join(info['addresses'])}"
            if "sessions" in info and info.get("running"):
                ports += f"  sessions={info['sessions']}"
            click.echo(f"  {name:<5} {state:<12} {ports}")
        spam = found.spam_filter
        if spam is None:
            click.echo("spam filter: off (SEALMAIL_RSPAMD_URL is not set)")
        elif spam["answers"]:
            click.echo(f"spam filter: rspamd at {spam['url']} answers")
        else:
            click.echo(f"spam filter: rspamd at {spam['url']} DOES NOT ANSWER ({spam['error']})")
        if found.queue:
            click.echo("queue: " + ", ".join(f"{k} {v}" for k, v in sorted(found.queue.items())))
        if found.oldest_pending_seconds is not None:
            click.echo(f"oldest queued message: {found.oldest_pending_seconds / 60:.0f} minutes")
        if found.problems:
            click.echo("problems:")
            for problem in found.problems:
                click.echo(f"  - {problem}")
        else:
            click.echo("no problems in the last 24 hours")

    ctx.emit(asdict(found), human)
