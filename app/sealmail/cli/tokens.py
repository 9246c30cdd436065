"""``sealmail token add|list|revoke``: API tokens (the same service as the web admin and the API)."""

from __future__ import annotations

from typing import Any

import click

from sealmail.cli.common import Context, common_options, table
from sealmail.config.models import ApiToken
from sealmail.services import tokens as service


def token_json(token: ApiToken) -> dict[str, Any]:
    return {
        "id": token.id,
        "name": token.name,
        "scopes": token.scopes,
        "created_at": token.created_at,
        "last_used_at": token.last_used_at,
        "revoked_at": token.revoked_at,
    }


@click.group()
def token() -> None:
    """API tokens for the REST API (/v1): scoped, shown once, revocable."""


@token.command("add")
@click.argument("name")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    type=click.Choice(list(service.SCOPES)),
    help="What the token may do (repeat the option).",
)
@common_options
def add(ctx: Context, name: str, scopes: tuple[str, ...]) -> None:
    """Create a token called NAME and print it once."""
    made, secret = service.create_token(ctx.store, name, scopes)
    ctx.emit({**token_json(made), "token": secret}, f"token {made.name} ({made.id}), shown once:\n{secret}")


@token.command("list")
@common_options
def list_(ctx: Context) -> None:
    """List tokens (never their secrets)."""
    found = service.list_tokens(ctx.store)
    rows = [
        (
            t.id,
            t.name,
            ",".join(t.scopes),
            "revoked" if t.revoked_at else "active",
            f"{t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "never",
        )
        for t in found
    ]
    ctx.emit([token_json(t) for t in found], lambda: table(rows, ("ID", "NAME", "SCOPES", "STATE", "LAST USED")))


@token.command("revoke")
@click.argument("token_id")
@common_options
def revoke(ctx: Context, token_id: str) -> None:
    """Revoke the token TOKEN_ID: it stops working at once."""
    revoked = service.revoke_token(ctx.store, token_id)
    ctx.emit(token_json(revoked), f"revoked token {revoked.name}")
