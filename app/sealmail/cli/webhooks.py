"""``sealmail webhook-secret``: the key receivers use to verify webhook signatures."""

from __future__ import annotations

import click

from sealmail.cli.common import Context, common_options


@click.command("webhook-secret")
@common_options
def webhook_secret(ctx: Context) -> None:
    """Print the HMAC-SHA256 key that signs webhook calls (header X-Sealmail-Signature: sha256=<hex>).

    Receivers compute HMAC-SHA256 of the request body with this key and compare.
    """
    from sealmail.jobs.webhooks import load_webhook_secret

    secret = load_webhook_secret(ctx.settings).decode()
    ctx.emit({"webhook_secret": secret}, secret)
