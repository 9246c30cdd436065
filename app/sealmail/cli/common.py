"""What every command shares: --data-dir, --env-file, --json, and lazily built settings and store."""

from __future__ import annotations

import functools
import getpass
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from sealmail.config import ConfigStore, open_store
from sealmail.services.eventlog import Actor
from sealmail.settings import Settings, load_settings


class CLIError(Exception):
    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


class Context:
    def __init__(self, data_dir: Path | None, env_file: Path | None, as_json: bool) -> None:
        self.data_dir = data_dir
        self.env_file = env_file
        self.as_json = as_json
        self._store: ConfigStore | None = None

    @functools.cached_property
    def settings(self) -> Settings:
        overrides: dict[str, Any] = {}
        if self.data_dir is not None:
            overrides["data_dir"] = self.data_dir
        return load_settings(self.env_file, **overrides)

    @property
    def store(self) -> ConfigStore:
        if self._store is None:
            self._store = open_store(self.settings)
            click.get_current_context().call_on_close(self._store.close)
        return self._store

    @functools.cached_property
    def actor(self) -> Actor:
        """Who makes a change from the command line, for its audit entry: the system user running it."""
        try:
            user = getpass.getuser()
        except (KeyError, OSError):  # no name for this uid (a container without passwd entries)
            user = f"uid {os.getuid()}"
        return Actor("cli", f"command line ({user})", "local")

    def emit(self, data: Any, human: str | Callable[[], None]) -> None:
        """Print ``data`` as JSON in --json mode, else the human form."""
        if self.as_json:
            click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=_json_default))
        elif callable(human):
            human()
        else:
            click.echo(human)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def common_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add --data-dir, --env-file and --json to a command; it receives a ``Context`` first."""

    @click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        help="Data directory (default: $SEALMAIL_DATA_DIR, the env file's, or /var/lib/sealmail).",
    )
    @click.option(
        "--env-file",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Env file to read (default: $SEALMAIL_ENV_FILE or /etc/sealmail/sealmail.env if present).",
    )
    @click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
    @functools.wraps(func)
    def wrapper(data_dir: Path | None, env_file: Path | None, as_json: bool, **kwargs: Any) -> Any:
        return func(Context(data_dir, env_file, as_json), **kwargs)

    return wrapper


def table(rows: Sequence[tuple[str, ...]], headers: tuple[str, ...]) -> None:
    if not rows:
        return
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    for row in [headers, *rows]:
        click.echo("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def read_secret(prompt: str) -> str:
    """A password or key: hidden prompt on a terminal, else one line of standard input."""
    value = click.prompt(prompt, hide_input=True) if sys.stdin.isatty() else sys.stdin.readline().rstrip("\r\n")
    if not value:
        raise CLIError(f"{prompt.lower()} is empty")
    return value
