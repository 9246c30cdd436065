"""``sealmail alias add|list|set|rm|passwd|recovery-key|two-factor-off``."""

from __future__ import annotations

from typing import Any

import click

from sealmail.cli.common import CLIError, Context, common_options, read_secret, table
from sealmail.config.base import ConfigStore
from sealmail.config.models import Alias
from sealmail.services import aliases as service
from sealmail.services import credentials, operations


def parse_size(text: str) -> int:
    return service.parse_size(text)


def alias_json(store: ConfigStore, alias: Alias) -> dict[str, Any]:
    return service.describe_alias(store, alias)


@click.group()
def alias() -> None:
    """Aliases: user@domain, *@domain (catch-all) and /regex/@domain."""


@alias.command("add")
@click.argument("address")
@click.option("--to", "recipients", multiple=True, metavar="ADDRESS|URL", help="Forward to an address or webhook.")
@click.option("--storage/--no-storage", default=None, help="Keep mail in an encrypted mailbox (default: when no --to).")
@click.option("--disabled", is_flag=True, help="Create the alias disabled.")
@click.option(
    "--disabled-reply",
    type=click.Choice(service.DISABLED_REPLIES),
    default="reject",
    show_default=True,
    help="What mail to a disabled alias gets: drop (accept silently), defer (4xx), reject (5xx).",
)
@click.option("--quota", metavar="SIZE", help="Mailbox quota, e.g. 2G (default: the server's).")
@click.option("--description", default="", help="A note for admins.")
@click.option("--password", "with_password", is_flag=True, help="Also generate a password and print it once.")
@common_options
def add(
    ctx: Context,
    address: str,
    recipients: tuple[str, ...],
    storage: bool | None,
    disabled: bool,
    disabled_reply: str,
    quota: str | None,
    description: str,
    with_password: bool,
) -> None:
    """Create the alias ADDRESS."""
    created = service.add_alias(
        ctx.store,
        address,
        recipients=recipients,
        storage=storage,
        enabled=not disabled,
        disabled_reply=disabled_reply,
        quota=parse_size(quota) if quota else None,
        description=description,
        allow_private_webhooks=ctx.settings.webhook_allow_private,
    )
    data = alias_json(ctx.store, created)
    lines = [f"added alias {data['address']}"]
    if with_password:
        data["password"] = credentials.set_password(ctx.store, ctx.settings, address, actor=ctx.actor)
        data["has_password"] = True
        lines.append(f"password (shown once): {data['password']}")
    ctx.emit(data, "\n".join(lines))


@alias.command("list")
@click.argument("domain", required=False)
@common_options
def list_(ctx: Context, domain: str | None) -> None:
    """List aliases, of DOMAIN or of every domain."""
    found = [alias_json(ctx.store, a) for a in service.list_aliases(ctx.store, domain)]

    def human() -> None:
        rows = []
        for a in found:
            targets = list(a["recipients"]) + (["(mailbox)"] if a["storage"] else [])
            state = "enabled" if a["enabled"] else f"disabled:{a['disabled_reply']}"
            rows.append((a["address"], state, ", ".join(targets)))
        table(rows, ("ALIAS", "STATE", "DELIVERS TO"))

    ctx.emit(found, human)


@alias.command("set")
@click.argument("address")
@click.option("--to", "recipients", multiple=True, metavar="ADDRESS|URL", help="Replace the recipients.")
@click.option("--no-recipients", is_flag=True, help="Remove every recipient.")
@click.option("--storage/--no-storage", default=None, help="Turn the mailbox on or off.")
@click.option("--enable/--disable", "enabled", default=None, help="Enable or disable the alias.")
@click.option(
    "--disabled-reply", type=click.Choice(service.DISABLED_REPLIES), help="Reply mail to it gets when disabled."
)
@click.option("--quota", metavar="SIZE", help="Mailbox quota, e.g. 2G; 'default' for the server's.")
@click.option("--description", help="A note for admins.")
@click.option(
    "--block-sending/--allow-sending",
    "sending_blocked",
    default=None,
    help="Stop the alias sending through submission (550 5.7.1), or let it send again.",
)
@common_options
def set_(
    ctx: Context,
    address: str,
    recipients: tuple[str, ...],
    no_recipients: bool,
    storage: bool | None,
    enabled: bool | None,
    disabled_reply: str | None,
    quota: str | None,
    description: str | None,
    sending_blocked: bool | None,
) -> None:
    """Change the alias ADDRESS."""
    if recipients and no_recipients:
        raise CLIError("--to and --no-recipients exclude each other")
    updated = service.update_alias(
        ctx.store,
        address,
        recipients=[] if no_recipients else (list(recipients) if recipients else None),
        storage=storage,
        enabled=enabled,
        disabled_reply=disabled_reply,
        quota=parse_size(quota) if quota and quota != "default" else None,
        clear_quota=quota == "default",
        description=description,
        sending_blocked=sending_blocked,
        allow_private_webhooks=ctx.settings.webhook_allow_private,
        settings=ctx.settings,
    )
    data = alias_json(ctx.store, updated)
    ctx.emit(data, f"updated alias {data['address']}")


@alias.command("rm")
@click.argument("address")
@common_options
def rm(ctx: Context, address: str) -> None:
    """Remove the alias ADDRESS."""
    found = service.get_alias(ctx.store, address)
    shown = service.alias_address(ctx.store, found)
    service.remove_alias(ctx.store, ctx.settings, address)
    ctx.emit({"removed": shown}, f"removed alias {shown}")


@alias.command("passwd")
@click.argument("address")
@click.option("--current", "use_current", is_flag=True, help="Ask for the current password and keep the mailbox.")
@click.option("--recovery", "use_recovery", is_flag=True, help="Ask for the recovery key and keep the mailbox.")
@click.option(
    "--reset-mailbox", is_flag=True, help="Without either: delete the (unreadable) mailbox and start an empty one."
)
@common_options
def passwd(ctx: Context, address: str, use_current: bool, use_recovery: bool, reset_mailbox: bool) -> None:
    """Generate a new password for ADDRESS and print it once (only a verifier and wrapped keys are kept).

    An alias with a mailbox keeps its mail only when its keys can be re-wrapped: give the current
    password (--current) or the recovery key (--recovery). Secrets are read from the terminal, or
    one per line from standard input when it is not a terminal. Sessions signed in with the old
    password end, and the API tokens the alias's user made are revoked.
    """
    if sum((use_current, use_recovery, reset_mailbox)) > 1:
        raise CLIError("--current, --recovery and --reset-mailbox exclude each other")
    found = service.get_alias(ctx.store, address)
    made = operations.new_password(
        ctx.store,
        ctx.settings,
        ctx.actor,
        found,
        current_password=read_secret("Current password") if use_current else None,
        recovery_key=read_secret("Recovery key") if use_recovery else None,
        reset_mailbox=reset_mailbox,
    )
    ctx.emit(
        {"address": made.address, "password": made.password},
        f"new password for {made.address} (shown once, store it now):\n{made.password}",
    )


@alias.command("recovery-key")
@click.argument("address")
@common_options
def recovery_key(ctx: Context, address: str) -> None:
    """Make a recovery key for ADDRESS's mailbox (asks for its password) and print it once.

    With it, `alias passwd --recovery` sets a new password without losing mail. Keep it offline.
    """
    key = credentials.add_recovery_key(ctx.store, ctx.settings, address, read_secret("Password"))
    shown = service.alias_address(ctx.store, service.get_alias(ctx.store, address))
    ctx.emit({"address": shown, "recovery_key": key}, f"recovery key for {shown} (shown once, keep it offline):\n{key}")


@alias.command("two-factor-off")
@click.argument("address")
@common_options
def two_factor_off(ctx: Context, address: str) -> None:
    """Turn off two-factor authentication for ADDRESS's self-service area (its user lost the app).

    The password alone signs in there again; the user can turn it on anew with a new app.
    """
    from sealmail.services import selfservice

    shown = selfservice.turn_off_two_factor(ctx.store, address, ctx.actor)
    ctx.emit({"address": shown, "two_factor": False}, f"two-factor authentication is off for {shown}")
