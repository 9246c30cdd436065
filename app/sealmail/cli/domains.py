"""``sealmail domain add|list|rm|spam|share-keys``."""

from __future__ import annotations

from typing import Any

import click

from sealmail.cli.common import CLIError, Context, common_options, table
from sealmail.config.models import Domain
from sealmail.services import domains as service


def domain_json(domain: Domain) -> dict[str, Any]:
    return {
        "name": domain.unicode_name,
        "ascii": domain.name,
        "id": domain.id,
        "created_at": domain.created_at,
        "spam": service.spam_thresholds(domain),
    }


@click.group()
def domain() -> None:
    """Hosted domains (IDN accepted in either form)."""


@domain.command("add")
@click.argument("name")
@common_options
def add(ctx: Context, name: str) -> None:
    """Host the domain NAME."""
    created = service.add_domain(ctx.store, name, ctx.settings)
    shown = created.unicode_name if created.unicode_name == created.name else f"{created.unicode_name} ({created.name})"
    ctx.emit(domain_json(created), f"added domain {shown}")


@domain.command("list")
@common_options
def list_(ctx: Context) -> None:
    """List hosted domains."""
    found = service.list_domains(ctx.store)
    rows = [(d.unicode_name, d.name, d.created_at.strftime("%Y-%m-%d")) for d in found]
    ctx.emit([domain_json(d) for d in found], lambda: table(rows, ("DOMAIN", "ASCII", "ADDED")))


@domain.command("rm")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Also remove the domain's aliases.")
@common_options
def rm(ctx: Context, name: str, yes: bool) -> None:
    """Stop hosting NAME (with --yes, also when it still has aliases)."""
    found = service.get_domain(ctx.store, name)
    count = len(ctx.store.list_aliases(found.name))
    if count and not yes:
        raise CLIError(f"domain {found.unicode_name} has {count} alias(es); pass --yes to remove them too")
    service.remove_domain(ctx.store, ctx.settings, name)
    ctx.emit({"removed": found.unicode_name, "aliases_removed": count}, f"removed domain {found.unicode_name}")


def _threshold(ctx: click.Context, param: click.Parameter, value: str | None) -> float | str | None:
    """A score, or ``default``: rspamd's own action decides that band."""
    if value is None or value.strip().lower() == "default":
        return value and "default"
    try:
        return float(value)
    except ValueError:
        raise click.BadParameter("a score (such as 12 or 5.5) or 'default'") from None


@domain.command("spam")
@click.argument("name")
@click.option("--reject", callback=_threshold, metavar="SCORE|default", help="Refuse (550 5.7.1) at this score.")
@click.option("--defer", callback=_threshold, metavar="SCORE|default", help="Defer (451 4.7.1) at this score.")
@click.option("--junk", callback=_threshold, metavar="SCORE|default", help="File in Junk at this score.")
@click.option("--clear", is_flag=True, help="Clear every threshold first: rspamd's own actions decide.")
@common_options
def spam(ctx: Context, name: str, reject: Any, defer: Any, junk: Any, clear: bool) -> None:
    """Show or set the rspamd scores at which mail to NAME is refused, deferred or filed in Junk.

    A threshold left at 'default' (or cleared) leaves that band to rspamd's own action; those set
    must rise: junk < defer < reject. Without options, shows them.
    """
    given = {"reject": reject, "defer": defer, "junk": junk}
    changes: dict[str, float | None] = dict.fromkeys(service.SPAM_THRESHOLDS) if clear else {}
    changes |= {key: None if value == "default" else value for key, value in given.items() if value is not None}
    found = service.set_spam_thresholds(ctx.store, name, changes) if changes else service.get_domain(ctx.store, name)
    now = service.spam_thresholds(found)
    shown = ", ".join(f"{key} {'rspamd' if value is None else f'{value:g}'}" for key, value in now.items())
    ctx.emit(domain_json(found), f"{found.unicode_name}: {shown}")


@domain.command("share-keys")
@common_options
def share_keys(ctx: Context) -> None:
    """Put every hosted domain's DKIM keys both here and in the config store.

    Hosts sharing a config store sign with the keys it keeps: key files this host lacks are
    written from it, keys only this host has are stored for the others (the first stored stays).
    """
    from sealmail.services.dkim import share_keys as share

    done = share(ctx.settings, ctx.store)
    ctx.emit(done, f"{done['written']} key file(s) written here, {done['stored']} key(s) stored for the other hosts")


@click.command("dns-records")
@click.argument("names", nargs=-1)
@click.option("--all", "all_domains", is_flag=True, help="Every hosted domain.")
@common_options
def dns_records(ctx: Context, names: tuple[str, ...], all_domains: bool) -> None:
    """The DNS records the hosted domains NAMES need, with the exact values to publish.

    Deployment publishes exactly this list (``--all --json``); each record names its zone.
    """
    from sealmail.services.dnsrecords import records_for

    if all_domains == bool(names):
        raise CLIError("name one or more hosted domains, or pass --all")
    found = service.list_domains(ctx.store) if all_domains else [service.get_domain(ctx.store, n) for n in names]
    records = [r for d in found for r in records_for(ctx.settings, d.name, ctx.store)]

    def human() -> None:
        rows = []
        for r in records:
            value = f"{r.priority} {r.value}" if r.priority is not None else r.value
            rows.append((r.name, r.type, value))
        table(rows, ("NAME", "TYPE", "VALUE"))

    ctx.emit([r.as_dict() for r in records], human)


@click.command("host-names")
@common_options
def host_names(ctx: Context) -> None:
    """The names that lead to this host (its TLS certificate must cover them all), in A-label form."""
    from sealmail.services.dnsrecords import host_names as names_for

    names = names_for(ctx.settings, [d.name for d in service.list_domains(ctx.store)])
    ctx.emit(names, "\n".join(names))
