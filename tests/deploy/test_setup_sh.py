"""setup.sh: flags, menu and the preflight checks that refuse with a clear message.

Only the checks run here (--action check, help, exit): the real setup is what the Molecule
scenarios test.
"""

from __future__ import annotations

import os
import pty
import re
import select
import socket
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SETUP = str(ROOT / "setup.sh")
IS_ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not IS_ROOT, reason="the checks after the root check need root")


@pytest.fixture(scope="module")
def debian_12(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every run sees a supported OS unless a test says otherwise."""
    path = tmp_path_factory.mktemp("os") / "os-release"
    path.write_text('ID=debian\nVERSION_ID="12"\n')
    return path


@pytest.fixture
def run(debian_12: Path):
    def run_setup(*args: str, env: dict[str, str] | None = None, user: str | None = None):
        return _run(debian_12, *args, env=env, user=user)

    return run_setup


def _run(
    os_release: Path, *args: str, env: dict[str, str] | None = None, user: str | None = None
) -> subprocess.CompletedProcess:
    command = ["bash", SETUP, *args]
    if user is not None:
        command = ["setpriv", f"--reuid={user}", "--regid=nogroup", "--clear-groups", *command]
    full_env = {
        "PATH": os.environ["PATH"],
        # Nothing answers on loopback port 25: the outbound check sees a blocked port at once.
        "SEALMAIL_PORT25_PROBE": "127.0.0.1",
        "SEALMAIL_OS_RELEASE": str(os_release),
        **(env or {}),
    }
    return subprocess.run(command, capture_output=True, text=True, env=full_env, timeout=60, check=False)


def test_help_lists_the_flags(run):
    result = run("--help")
    assert result.returncode == 0
    for flag in ("--domain", "--email", "--cert-method", "--action", "--yes", "DEBUG=true"):
        assert flag in result.stdout


def test_unknown_option_is_refused(run):
    result = run("--frobnicate")
    assert result.returncode == 1
    assert "unknown option: --frobnicate" in result.stderr


def test_bad_cert_method_is_refused(run):
    result = run("--cert-method", "carrier-pigeon", "--action", "check")
    assert result.returncode == 1
    assert "--cert-method must be cloudflare, http or selfsigned" in result.stderr


@pytest.mark.skipif(not IS_ROOT, reason="needs root to become another user")
def test_refuses_without_root(run):
    result = run("--action", "setup", "--domain", "example.test", "--yes", user="nobody")
    assert result.returncode == 1
    assert "run me as root" in result.stderr


@needs_root
def test_refuses_an_unsupported_os(run, tmp_path: Path):
    release = tmp_path / "os-release"
    release.write_text('ID=centos\nVERSION_ID="7"\n')
    result = run("--action", "check", env={"SEALMAIL_OS_RELEASE": str(release)})
    assert result.returncode == 1
    assert "unsupported operating system 'centos 7'" in result.stderr


@needs_root
def test_accepts_ubuntu_2204(run, tmp_path: Path):
    release = tmp_path / "os-release"
    release.write_text('ID=ubuntu\nVERSION_ID="22.04"\n')
    result = run("--action", "check", env={"SEALMAIL_OS_RELEASE": str(release), "SEALMAIL_MIN_DISK_GB": "0"})
    assert "unsupported operating system" not in result.stderr


@needs_root
def test_refuses_less_than_1gb_of_memory(run, tmp_path: Path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:         524288 kB\n")
    result = run("--action", "check", env={"SEALMAIL_MEMINFO": str(meminfo)})
    assert result.returncode == 1
    assert "Sealmail needs at least 1 GB" in result.stderr


@needs_root
def test_refuses_too_little_disk(run):
    result = run("--action", "check", env={"SEALMAIL_MIN_DISK_GB": "1000000"})
    assert result.returncode == 1
    assert "Sealmail needs at least 1000000 GB" in result.stderr


@needs_root
def test_refuses_when_a_mail_port_is_taken(run):
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(("127.0.0.1", 25))
    except OSError:
        pytest.skip("port 25 is already taken on this machine")
    listener.listen()
    holder = subprocess.Popen(["sleep", "30"], pass_fds=(listener.fileno(),))
    try:
        result = run("--action", "check", env={"SEALMAIL_MIN_DISK_GB": "0"})
    finally:
        holder.kill()
        holder.wait()
        listener.close()
    assert result.returncode == 1
    assert "ports already in use by other programs: 25" in result.stderr


@needs_root
def test_warns_when_outbound_port_25_is_blocked(run):
    result = run("--action", "check", env={"SEALMAIL_MIN_DISK_GB": "0"})
    assert "outbound port 25 looks blocked" in result.stderr
    assert "provider" in result.stderr
    assert result.returncode == 0, result.stderr
    assert "preflight checks passed" in result.stdout


@needs_root
@pytest.mark.parametrize(("args", "expected"), [((), "selfsigned"), (("--cert-method", "http"), "http")])
def test_cert_method_can_come_from_the_environment(run, args: tuple[str, ...], expected: str):
    """cloud-init's /etc/profile.d/env.sh may export SEALMAIL_CERT_METHOD (the name site.yml reads): an
    unattended first boot then uses it instead of choosing http (a flag still wins)."""
    result = run("--action", "check", *args, env={"SEALMAIL_CERT_METHOD": "selfsigned", "SEALMAIL_MIN_DISK_GB": "0"})
    assert result.returncode == 0, result.stderr
    assert f"preflight checks passed (certificates: {expected})" in result.stdout


@needs_root
def test_bad_cert_method_from_the_environment_is_refused(run):
    result = run("--action", "check", env={"SEALMAIL_CERT_METHOD": "carrier-pigeon", "SEALMAIL_MIN_DISK_GB": "0"})
    assert result.returncode == 1
    assert "SEALMAIL_CERT_METHOD must be cloudflare, http or selfsigned, not 'carrier-pigeon'" in result.stderr


def test_debug_traces_commands(run):
    result = run("--action", "help", env={"DEBUG": "true"})
    assert result.returncode == 0
    assert "+ parse_args" in result.stderr


def test_no_menu_without_a_terminal(run):
    result = run()
    assert result.returncode == 1
    assert "no terminal for the menu" in result.stderr


def test_menu_shows_the_entries_and_help_then_exits():
    pid, fd = pty.fork()
    if pid == 0:  # child: setup.sh on the terminal
        # No shell on purpose: bash runs the script on the terminal pty.fork made.
        os.execvpe("bash", ["bash", SETUP], {"PATH": os.environ["PATH"], "TERM": "dumb"})  # noqa: S606
    output = b""

    def read_until(marker: bytes, timeout: float = 20) -> None:
        nonlocal output
        deadline = time.monotonic() + timeout
        while marker not in output and time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if ready:
                try:
                    output += os.read(fd, 4096)
                except OSError:
                    break
        assert marker in output, output.decode(errors="replace")

    read_until(b"Choose [1-7]")
    menu = [line.strip() for line in output.decode().splitlines() if re.match(r"^\d\. ", line.strip())]
    assert menu == [
        "1. Initial setup",
        "2. Setup Backups",
        "3. Setup Auto Upgrades",
        "4. Renew certificates",
        "5. Restore from Backup",
        "6. Help",
        "7. Exit",
    ]
    os.write(fd, b"6\n")
    read_until(b"journalctl -u sealmail-mx")
    os.write(fd, b"7\n")
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0


@needs_root
@pytest.mark.parametrize("action", ["backups", "upgrades", "restore"])
def test_backup_actions_need_an_installed_sealmail(run, action):
    """Backups, automatic upgrades and restore run on a host set up first; before that they say so."""
    if Path("/opt/sealmail/current/bin/sealmail").exists():
        pytest.skip("Sealmail is installed on this machine")
    result = run("--action", action, "--yes")
    assert result.returncode == 1
    assert "run Initial setup first" in result.stderr


TOKEN = "Abc_123-xYz0aBc_123-xYz0aBc_123-xYz0aBc1"


@needs_root
@pytest.mark.parametrize(
    "line",
    [
        f'dns_cloudflare_api_token = "{TOKEN}"',
        f"dns_cloudflare_api_token = '{TOKEN}'",
        f"dns_cloudflare_api_token = {TOKEN}",
        f"  dns_cloudflare_api_token={TOKEN}   # Zone:DNS:Edit",
        f'dns_cloudflare_api_token = "{TOKEN}"\r',
    ],
)
def test_cloudflare_token_is_read_with_or_without_quotes(run, tmp_path: Path, line: str):
    """/root/.cloudflare.ini may quote the token (double or single quotes) or not: setup.sh reads the
    token itself, without the quotes (its length says so: the token is never printed)."""
    ini = tmp_path / "cloudflare.ini"
    ini.write_text(f"# certbot-dns-cloudflare\n{line}\n")
    ini.chmod(0o600)
    result = run(
        "--action",
        "check",
        "--cert-method",
        "cloudflare",
        env={"SEALMAIL_CLOUDFLARE_INI": str(ini), "SEALMAIL_MIN_DISK_GB": "0"},
    )
    assert result.returncode == 0, result.stderr
    assert f"Cloudflare API token found in {ini} ({len(TOKEN)} characters)" in result.stdout
    assert TOKEN not in result.stdout + result.stderr


@needs_root
@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("dns_cloudflare_email = x@example.com\n", "no dns_cloudflare_api_token = <token> line"),
        ('dns_cloudflare_api_token = "two words"\n', "does not look like a Cloudflare API token"),
    ],
)
def test_cloudflare_credentials_without_a_token_are_refused(run, tmp_path: Path, content: str, message: str):
    ini = tmp_path / "cloudflare.ini"
    ini.write_text(content)
    result = run(
        "--action",
        "check",
        "--cert-method",
        "cloudflare",
        env={"SEALMAIL_CLOUDFLARE_INI": str(ini), "SEALMAIL_MIN_DISK_GB": "0"},
    )
    assert result.returncode == 1
    assert message in result.stderr


@pytest.mark.parametrize("quote", ['"', "'", ""])
def test_certbot_reads_the_same_token(tmp_path: Path, quote: str):
    """certbot-dns-cloudflare reads its credentials file with configobj (Debian's python3-configobj,
    certbot's own dependency), which removes the quotes too: the tls role hands it the file as is."""
    python = "/usr/bin/python3"
    if subprocess.run([python, "-c", "import configobj"], capture_output=True, check=False).returncode != 0:
        pytest.fail("python3-configobj is not installed (scripts/system-deps test installs it)")
    ini = tmp_path / "cloudflare.ini"
    ini.write_text(f"dns_cloudflare_api_token = {quote}{TOKEN}{quote}\n")
    read = subprocess.run(
        [
            python,
            "-c",
            "import configobj, sys; print(configobj.ConfigObj(sys.argv[1])['dns_cloudflare_api_token'])",
            ini,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert read.stdout.strip() == TOKEN


def test_help_says_upgrades_need_signers_or_a_pin(run):
    result = run("--help")
    assert "--upgrade-signers" in result.stdout
    assert "--upgrade-pin" in result.stdout
    assert "Without one of them there is no" in result.stdout


@needs_root
def test_upgrades_are_refused_without_signers_or_a_pin(run):
    """The default: no automatic upgrade unless what it may install is verified."""
    result = run("--action", "upgrades", "--yes", env={"SEALMAIL_INSTALLED_BIN": "/bin/true"})
    assert result.returncode == 1
    assert "no automatic upgrades without verification" in result.stderr


@pytest.mark.parametrize("pin", ["main", "abc123", "g" * 40])
def test_a_pin_must_be_a_full_commit_id(run, pin):
    result = run("--action", "upgrades", "--upgrade-pin", pin, "--yes")
    assert result.returncode == 1
    assert "--upgrade-pin must be a full commit id" in result.stderr


def test_signers_must_be_an_allowed_signers_file(run, tmp_path: Path):
    not_signers = tmp_path / "signers"
    not_signers.write_text("# nothing but a comment\n")
    for path in (str(not_signers), str(tmp_path / "missing")):
        result = run("--action", "upgrades", "--upgrade-signers", path, "--yes")
        assert result.returncode == 1
        assert "is not a readable allowed-signers file" in result.stderr
