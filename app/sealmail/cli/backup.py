"""``sealmail backup``: encrypted backups to S3, their verification and restore."""

from __future__ import annotations

import dataclasses
import re
import sys
from pathlib import Path

import click

from sealmail.backup import keys
from sealmail.backup.errors import BackupError
from sealmail.backup.restore import restore as restore_run
from sealmail.backup.run import list_runs, run_backup, verify
from sealmail.backup.s3 import Bucket
from sealmail.cli.common import CLIError, Context, common_options, table
from sealmail.config.models import LogEntry


@click.group()
def backup() -> None:
    """Encrypted backups to S3-compatible storage, and restore from them."""


def _set_env_line(text: str, path: Path, name: str, value: str, force: bool) -> str:
    line = f"{name}={value}"
    if re.search(rf"^{name}=\S", text, re.M):
        if not force:
            raise CLIError(f"{path} already has {name} (use --force to replace it)")
        return re.sub(rf"^{name}=.*$", line, text, flags=re.M)
    return text + ("" if text.endswith("\n") or not text else "\n") + line + "\n"


@backup.command("init-key")
@click.option("--force", is_flag=True, help="Replace a public key already in the env file.")
@common_options
def init_key(ctx: Context, force: bool) -> None:
    """Make the operator backup key pair: the private key is printed once, never stored here.

    With --env-file, SEALMAIL_BACKUP_PUBLIC_KEY and SEALMAIL_BACKUP_MANIFEST_KEY (the manifest MAC
    key, derived from the private key) are written into that file.
    """
    private, public = keys.new_key_pair()
    manifest_key = keys.manifest_key_text(keys.read_private_text(private))
    if ctx.env_file is not None:
        text = ctx.env_file.read_text() if ctx.env_file.exists() else ""
        text = _set_env_line(text, ctx.env_file, "SEALMAIL_BACKUP_PUBLIC_KEY", public, force)
        text = _set_env_line(text, ctx.env_file, "SEALMAIL_BACKUP_MANIFEST_KEY", manifest_key, True)
        ctx.env_file.write_text(text)
    written = f", written to {ctx.env_file}" if ctx.env_file else ""
    ctx.emit(
        {"private_key": private, "public_key": public, "manifest_key": manifest_key},
        f"operator backup private key (store it OFF this server; restores need it; it is not kept here):\n"
        f"  {private}\n"
        f"public key (SEALMAIL_BACKUP_PUBLIC_KEY{written}):\n"
        f"  {public}\n"
        f"manifest key (SEALMAIL_BACKUP_MANIFEST_KEY{written}; derived from the private key):\n"
        f"  {manifest_key}",
    )


@backup.command("manifest-key")
@click.option(
    "--key-file",
    required=True,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="File holding the operator backup private key.",
)
@click.option("--write", is_flag=True, help="Write SEALMAIL_BACKUP_MANIFEST_KEY into the --env-file.")
@common_options
def manifest_key_cmd(ctx: Context, key_file: Path, write: bool) -> None:
    """The manifest MAC key of an operator key (SEALMAIL_BACKUP_MANIFEST_KEY), for hosts whose key
    pair was made before manifests were authenticated. Run it where the private key is."""
    try:
        value = keys.manifest_key_text(keys.read_private_key(key_file))
    except BackupError as exc:
        raise CLIError(str(exc)) from exc
    if write:
        if ctx.env_file is None:
            raise CLIError("--write needs --env-file")
        text = ctx.env_file.read_text() if ctx.env_file.exists() else ""
        ctx.env_file.write_text(_set_env_line(text, ctx.env_file, "SEALMAIL_BACKUP_MANIFEST_KEY", value, True))
    ctx.emit({"manifest_key": value}, value)


@backup.command("run")
@common_options
def run(ctx: Context) -> None:
    """Back up every mailbox, spool, the config store, keys, certificates and the env file."""
    try:
        report = run_backup(ctx.settings, ctx.env_file)
    except BackupError as exc:
        _log_failure(ctx, str(exc))
        raise CLIError(f"backup failed: {exc}") from exc
    ctx.emit(
        {
            "run": report.run,
            "files": report.files,
            "uploaded": report.uploaded,
            "octets_uploaded": report.octets_uploaded,
            "deleted_runs": report.deleted_runs,
        },
        f"backup {report.run}: {report.files} files, {len(report.uploaded)} uploaded "
        f"({report.octets_uploaded} octets), the rest unchanged; {len(report.deleted_runs)} old runs removed",
    )


def _log_failure(ctx: Context, reason: str) -> None:
    """Into the error log the admin sees (web admin, API); never hides the failure if that fails too."""
    try:
        ctx.store.append_log(LogEntry("error", "backup", "failed", detail=reason[:1000]))
    except Exception as exc:  # the backup error is what must be reported
        click.echo(f"sealmail: warning: could not write the error log: {exc}", err=True)


@backup.command("list")
@common_options
def list_cmd(ctx: Context) -> None:
    """The runs in the bucket, oldest first."""
    try:
        bucket = Bucket(ctx.settings)
        bucket.check()
        runs = list_runs(bucket)
    except BackupError as exc:
        raise CLIError(str(exc)) from exc
    ctx.emit(runs, lambda: table([(r,) for r in runs], ("run",)) if runs else click.echo("no backups yet"))


@backup.command("verify")
@click.argument("run_id", required=False)
@common_options
def verify_cmd(ctx: Context, run_id: str | None) -> None:
    """Download every object of a run (default: the latest) and check it against the manifest."""
    try:
        manifest, problems = verify(ctx.settings, run_id)
    except BackupError as exc:
        raise CLIError(str(exc)) from exc
    data = {"run": manifest.run, "files": len(manifest.entries), "problems": [dataclasses.asdict(p) for p in problems]}
    if problems:
        if ctx.as_json:
            ctx.emit(data, "")
        for problem in problems:
            click.echo(f"sealmail: error: {problem.name} ({problem.object}): {problem.reason}", err=True)
        raise CLIError(f"backup {manifest.run}: {len(problems)} of {len(manifest.entries)} objects are bad")
    ctx.emit(data, f"backup {manifest.run}: all {len(manifest.entries)} objects match the manifest")


@backup.command("restore")
@click.argument("run_id", required=False)
@click.option(
    "--key-file",
    required=True,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="File holding the operator backup private key.",
)
@click.option("--yes", is_flag=True, help="Restore over existing data or running components (moved aside).")
@click.option(
    "--mongodb",
    "mongodb_store",
    is_flag=True,
    help="Also replace the shared MongoDB config store with the run's copy (mongorestore --drop; on one host only).",
)
@common_options
def restore(ctx: Context, run_id: str | None, key_file: Path, yes: bool, mongodb_store: bool) -> None:
    """Bring back config, keys, certificates and every mailbox from a run (default: the latest)."""
    try:
        report = restore_run(
            ctx.settings, run_id, key_file, yes=yes, env_file=ctx.env_file, mongodb_store=mongodb_store
        )
    except BackupError as exc:
        raise CLIError(f"restore failed, nothing was changed: {exc}") from exc
    lines = [f"restored backup {report.run}: {report.files} files"]
    if report.aside_dir is not None:
        lines.append(f"{len(report.moved_aside)} existing files were moved aside into {report.aside_dir}")
    if report.skipped:
        lines.append(
            f"not restored: {', '.join(report.skipped)} (the shared MongoDB config store; --mongodb replaces it)"
        )
    lines.append("restart the components: systemctl restart 'sealmail-*' (or restart sealmail dev)")
    ctx.emit(
        {"run": report.run, "files": report.files, "moved_aside": report.moved_aside, "skipped": report.skipped},
        "\n".join(lines),
    )
    sys.stdout.flush()
