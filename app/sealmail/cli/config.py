"""``sealmail check-config``: the validator Ansible runs before installing an env file."""

from __future__ import annotations

from pathlib import Path

import click

from sealmail.errors import InvalidInput
from sealmail.settings import load_settings


@click.command("check-config")
@click.option(
    "--env-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The env file to check (default: $SEALMAIL_ENV_FILE or /etc/sealmail/sealmail.env).",
)
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def check_config(env_file: Path | None, as_json: bool) -> int:
    """Validate settings: exit 0 when valid, else print one line per invalid field and exit 1.

    With --env-file only that file is checked (the process environment is ignored), so the
    result is the same wherever it runs.
    """
    import json

    try:
        settings = load_settings(env_file, use_environ=env_file is None)
    except InvalidInput as exc:
        problems = str(exc).splitlines()
        if as_json:
            click.echo(json.dumps({"valid": False, "errors": problems}, ensure_ascii=False))
        else:
            for line in problems:
                click.echo(f"sealmail: invalid setting: {line}", err=True)
        return 1
    if as_json:
        click.echo(json.dumps({"valid": True, "data_dir": str(settings.data_dir)}))
    else:
        click.echo(f"ok: settings are valid (data dir {settings.data_dir})")
    return 0
