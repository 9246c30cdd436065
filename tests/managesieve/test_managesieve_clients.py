"""Debian's ``sieve-connect`` against the ManageSieve server: STARTTLS with certificate checks, SASL
PLAIN, then every script command a user runs from it (RFC 5804 §2.1, §2.2, §2.6-§2.10, §2.12)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from sealmail.config.sqlite import SQLiteConfigStore
from sealmail.services.aliases import get_alias
from sealmail.services.dnsrecords import records_for

from dnsserver import DnsServer

pytestmark = [pytest.mark.slow, pytest.mark.tool("sieve-connect")]

VACATION = """require ["fileinto", "vacation"];
# Holidays: file the lists, answer the rest once a week.
if header :contains "List-Id" "lists.example.org" {
    fileinto "Lists";
    stop;
}
vacation :days 7 :subject "Away – back on Monday" "I read mail again on Monday.";
"""
BROKEN = """require "fileinto";
if header :contains "Subject" "hello" {
    fileinto "Greetings"
}
"""


def sieve_connect(
    server,
    certs,
    account,
    *args: str,
    password: str | None = None,
    where: tuple[str, ...] | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """One sieve-connect run: STARTTLS verified against the test CA for "localhost", PLAIN, the
    password on a pipe (``--passwordfd``), never on the command line. ``where``: how it finds the
    server (by default localhost and the port, no SRV lookup)."""
    read, write = os.pipe()
    os.write(write, ((password or account.password) + "\n").encode())
    os.close(write)
    where = where or ("--server", "localhost", "--port", str(server.port), "--nosrv")
    try:
        return subprocess.run(
            [
                "sieve-connect",
                *where,
                "--4",
                "--tlscafile",
                str(certs.ca_cert),
                "--noclearchan",
                "--user",
                account.address,
                "--authmech",
                "PLAIN",
                "--passwordfd",
                str(read),
                *args,
            ],
            pass_fds=(read,),
            env={**os.environ, **(env or {})},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(read)


def stored(settings, account) -> dict[str, tuple[str, bool]]:
    """The account's scripts as the config store holds them: name -> (content, active)."""
    store = SQLiteConfigStore(settings.config_db_path)
    try:
        alias = get_alias(store, account.address)
        return {s.name: (s.content, s.active) for s in store.list_sieve_scripts(alias.id)}
    finally:
        store.close()


def test_sieve_connect_uploads_lists_activates_downloads_and_deletes(server, certs, account, tmp_path: Path) -> None:
    local = tmp_path / "vacation.sieve"
    local.write_text(VACATION, encoding="utf-8")

    done = sieve_connect(server, certs, account, "--upload", "--localsieve", str(local), "--remotesieve", "Ferien été")
    assert done.returncode == 0, done.stderr
    assert stored(server.settings, account) == {"Ferien été": (VACATION, False)}

    done = sieve_connect(server, certs, account, "--activate", "--remotesieve", "Ferien été")
    assert done.returncode == 0, done.stderr
    assert stored(server.settings, account)["Ferien été"][1] is True

    listed = sieve_connect(server, certs, account, "--list")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines() == ['"Ferien été" ACTIVE']

    back = tmp_path / "back.sieve"
    done = sieve_connect(server, certs, account, "--download", "--remotesieve", "Ferien été", "--localsieve", str(back))
    assert done.returncode == 0, done.stderr
    assert back.read_text(encoding="utf-8") == VACATION  # the octets uploaded, unchanged

    # RFC 5804 §2.10: not while it is active; deactivated, it goes.
    refused = sieve_connect(server, certs, account, "--delete", "--remotesieve", "Ferien été")
    assert refused.returncode != 0
    assert "ACTIVE" in refused.stderr
    done = sieve_connect(server, certs, account, "--deactivate")
    assert done.returncode == 0, done.stderr
    done = sieve_connect(server, certs, account, "--delete", "--remotesieve", "Ferien été")
    assert done.returncode == 0, done.stderr
    assert stored(server.settings, account) == {}


def test_sieve_connect_checkscript_shows_the_line_of_the_error(server, certs, account, tmp_path: Path) -> None:
    """RFC 5804 §2.12: NO with a human-readable message giving the line of the first error; the
    same script is refused by PUTSCRIPT (§2.6) and nothing is stored."""
    broken = tmp_path / "broken.sieve"
    broken.write_text(BROKEN, encoding="utf-8")
    checked = sieve_connect(server, certs, account, "--checkscript", "--localsieve", str(broken))
    assert checked.returncode != 0
    assert "CHECKSCRIPT failed: NO" in checked.stderr
    assert "line 4" in checked.stderr, checked.stderr  # the "}" where the ";" after fileinto is missing
    uploaded = sieve_connect(server, certs, account, "--upload", "--localsieve", str(broken), "--remotesieve", "b")
    assert uploaded.returncode != 0
    assert "line 4" in uploaded.stderr
    assert stored(server.settings, account) == {}

    good = tmp_path / "good.sieve"
    good.write_text(VACATION, encoding="utf-8")
    checked = sieve_connect(server, certs, account, "--checkscript", "--localsieve", str(good))
    assert checked.returncode == 0, checked.stderr
    assert stored(server.settings, account) == {}  # CHECKSCRIPT stores nothing


@pytest.mark.tool("dnsmasq")
def test_rfc5804_s1_8_sieve_connect_finds_the_server_through_the_srv_record_the_app_publishes(
    serve, certs, account, tmp_path: Path
) -> None:
    """Given only the domain, sieve-connect asks DNS for _sieve._tcp.<domain> (RFC 5804 §1.8) and
    connects where the record the app publishes (``sealmail dns-records``) points: a real DNS server
    serving exactly that record."""
    server = serve(hostname="localhost")  # the SRV target must resolve here: the test certificate's name
    settings = server.settings.model_copy(update={"managesieve_port": server.port})
    (record,) = [r for r in records_for(settings, "example.test") if r.name == "_sieve._tcp.example.test"]
    priority, weight, port, target = record.value.split()
    dns = DnsServer(tmp_path)
    dns.srv(record.name, target.rstrip("."), int(port), int(priority), int(weight))
    dns.start()
    try:
        # Net::DNS (sieve-connect's resolver) reads its server and port from the environment.
        env = {"RES_NAMESERVERS": "127.0.0.1", "RES_OPTIONS": f"port:{dns.port}"}
        listed = sieve_connect(
            server, certs, account, "--list", where=("--server", "example.test", "--tlshostname", "localhost"), env=env
        )
    finally:
        dns.stop()
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout == ""  # no scripts yet, and signed in: LISTSCRIPTS answered OK


def test_sieve_connect_with_a_wrong_password_is_refused(server, certs, account) -> None:
    refused = sieve_connect(server, certs, account, "--list", password="not the password")
    assert refused.returncode != 0
    assert "Authentication refused" in refused.stderr


def test_sievelibs_client_manages_scripts_over_starttls(server, certs, account, monkeypatch) -> None:
    """A second real client: sievelib's ManageSieve client (a Python library other projects use),
    STARTTLS checked against the test CA, PLAIN, then every script command it has."""
    from sievelib.managesieve import Client

    monkeypatch.setenv("SSL_CERT_FILE", str(certs.ca_cert))  # its TLS uses the default trust store
    client = Client("localhost", server.port)
    assert client.connect(account.address, account.password, starttls=True, authmech="PLAIN")
    try:
        assert "vacation" in client.get_sieve_capabilities()
        assert client.havespace("vacation", len(VACATION))
        assert client.checkscript(VACATION)
        assert not client.checkscript(BROKEN)
        assert "line 4" in client.errmsg.decode()
        assert client.putscript("Ferien été", VACATION)
        assert client.setactive("Ferien été")
        assert client.listscripts() == ("Ferien été", [])
        # sievelib sends CRLF line ends and joins the lines it reads back with LF, dropping the last
        assert client.getscript("Ferien été").splitlines() == VACATION.splitlines()
        assert client.renamescript("Ferien été", "holidays")
        assert client.listscripts() == ("holidays", [])
        assert not client.deletescript("holidays")  # the active one (RFC 5804 §2.10)
        assert client.setactive("")
        assert client.deletescript("holidays")
        assert client.listscripts() == (None, [])
    finally:
        client.logout()
