"""The ``sealmail`` command. Thin: it parses arguments, calls the services and prints.

User errors (bad input, unknown names, invalid settings) print one line per problem on stderr
and exit 1; usage errors exit 2 (click's convention). No traceback for either.
"""

from __future__ import annotations

import sys

import click

from sealmail.cli import (
    aliases,
    backup,
    config,
    doctor,
    domains,
    drain,
    serve,
    sieve,
    status,
    tokens,
    upgradeturn,
    webhooks,
)
from sealmail.cli.common import CLIError
from sealmail.errors import SealmailError


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="sealmail", prog_name="sealmail")
def cli() -> None:
    """Sealmail: a self-hosted mail server where every mailbox is its own encrypted database.

    Every command works on the data directory given by --data-dir, $SEALMAIL_DATA_DIR or the
    env file (--env-file, $SEALMAIL_ENV_FILE, /etc/sealmail/sealmail.env).
    """


cli.add_command(config.check_config)
cli.add_command(domains.domain)
cli.add_command(domains.dns_records)
cli.add_command(domains.host_names)
cli.add_command(aliases.alias)
cli.add_command(serve.serve)
cli.add_command(serve.dev)
cli.add_command(serve.list_components)
cli.add_command(serve.list_timers)
cli.add_command(webhooks.webhook_secret)
cli.add_command(status.status)
cli.add_command(doctor.doctor)
cli.add_command(drain.drain)
cli.add_command(upgradeturn.upgrade_turn)
cli.add_command(tokens.token)
cli.add_command(backup.backup)
cli.add_command(sieve.sieve)


def _fail(message: str, code: int = 1) -> None:
    for line in message.splitlines() or [message]:
        click.echo(f"sealmail: error: {line}", err=True)
    sys.exit(code)


def main() -> None:
    try:
        result = cli.main(prog_name="sealmail", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except CLIError as exc:
        _fail(str(exc), exc.code)
    except SealmailError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(result if isinstance(result, int) else 0)
