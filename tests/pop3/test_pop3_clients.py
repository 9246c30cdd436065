"""Real POP3 clients from Debian against the server: fetchmail and getmail6, over TLS, keep and delete."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from pop3kit import Account, deliver, login, make_account
from support import require_tool

pytestmark = pytest.mark.slow


def _message(n: int) -> bytes:
    return (
        f"From: sender{n}@example.org\r\nTo: pat@example.test\r\nSubject: client test {n}\r\n"
        f"Message-ID: <client{n}@example.org>\r\n\r\nline one of {n}\r\n.a line with a leading dot\r\n"
    ).encode()


def _server_subjects(running, context, account: Account) -> list[str]:
    client = login(running, context, account)
    try:
        count, _ = client.stat()
        return [
            next(line.decode() for line in client.top(n, 0)[1] if line.startswith(b"Subject:"))
            for n in range(1, count + 1)
        ]
    finally:
        client.quit()


@pytest.fixture
def pat(pop3_settings) -> Account:
    return make_account(pop3_settings, "pat@example.test")


def _fetchmail(home: Path, rc: str) -> subprocess.CompletedProcess[str]:
    rcfile = home / "fetchmailrc"
    rcfile.write_text(rc)
    rcfile.chmod(0o600)  # fetchmail refuses a readable rc file with a password in it
    env = {**os.environ, "FETCHMAILHOME": str(home)}
    return subprocess.run(
        ["fetchmail", "-v", "-f", str(rcfile)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=60,
        check=False,
    )


def test_fetchmail_keep_then_delete(pop3, pop3_settings, pat, certs, client_context, tmp_path) -> None:
    require_tool("fetchmail")
    deliver(pop3_settings, pat, _message(1), _message(2))
    home = tmp_path / "fetchmail"
    home.mkdir()
    out = tmp_path / "kept.bsmtp"
    poll = (
        "set no syslog\n"
        f'poll localhost with proto POP3 port {{port}}\n  user "{pat.address}" there with password "{pat.password}"'
        ' is "root" here\n'
        f'  options {{tls}} sslcertck sslcertfile "{certs.ca_cert}" {{mode}}\n  bsmtp "{{out}}"\n'
    )

    # Keep mode over implicit TLS (995-style port): both messages fetched, both stay on the server.
    result = _fetchmail(home, poll.format(port=pop3.ports["pop3s"], tls="ssl", mode="keep", out=out))
    assert result.returncode == 0, result.stdout
    assert "UIDL" in result.stdout
    kept = out.read_text()
    assert kept.count("\nDATA\n") + kept.startswith("DATA\n") == 2
    assert "Subject: client test 1" in kept
    assert "\n..a line with a leading dot\n" in kept  # BSMTP is byte-stuffed again by fetchmail
    assert len(_server_subjects(pop3, client_context, pat)) == 2

    # Again in keep mode: UIDL tells fetchmail nothing is new (exit code 1: no mail).
    result = _fetchmail(home, poll.format(port=pop3.ports["pop3s"], tls="ssl", mode="keep", out=out))
    assert result.returncode == 1, result.stdout
    assert "2 seen" in result.stdout

    # Delete mode over STLS on the plain port: only the new message is fetched, then all are flushed.
    deliver(pop3_settings, pat, _message(3))
    out2 = tmp_path / "deleted.bsmtp"
    rc = poll.format(port=pop3.ports["pop3"], tls='sslproto "tls1.2+"', mode="nokeep flush", out=out2)
    result = _fetchmail(home, rc)
    assert result.returncode == 0, result.stdout
    assert "POP3> STLS" in result.stdout
    assert "upgrade to TLS succeeded" in result.stdout
    fetched = out2.read_text()
    assert "Subject: client test 3" in fetched
    assert "Subject: client test 1" not in fetched
    assert _server_subjects(pop3, client_context, pat) == []


def test_getmail_keep_then_delete(pop3, pop3_settings, pat, certs, client_context) -> None:
    require_tool("getmail")
    deliver(pop3_settings, pat, _message(1), _message(2))
    # getmail refuses to deliver as root: then it delivers as nobody, into a directory nobody can reach.
    as_root = os.geteuid() == 0
    work = Path(tempfile.mkdtemp(prefix="sealmail-getmail-"))
    try:
        work.chmod(0o755)
        maildir = work / "Maildir"
        for sub in ("new", "cur", "tmp"):
            (maildir / sub).mkdir(parents=True)
        if as_root:
            nobody = pwd.getpwnam("nobody")
            for path in (maildir, *maildir.iterdir()):
                os.chown(path, nobody.pw_uid, nobody.pw_gid)

        def run(delete: bool) -> str:
            (work / "getmailrc").write_text(
                "[retriever]\ntype = SimplePOP3SSLRetriever\nserver = localhost\n"
                f"port = {pop3.ports['pop3s']}\nusername = {pat.address}\npassword = {pat.password}\n"
                f"ca_certs = {certs.ca_cert}\n\n"
                f"[destination]\ntype = Maildir\npath = {maildir}/\n" + ("user = nobody\n" if as_root else "") + "\n"
                f"[options]\ndelete = {str(delete).lower()}\nread_all = false\nverbose = 1\n"
            )
            result = subprocess.run(
                ["getmail", "--getmaildir", str(work), "--rcfile", "getmailrc"],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert result.returncode == 0, result.stdout + result.stdout
            return result.stdout

        assert "2 messages" in run(delete=False)
        assert len(list((maildir / "new").iterdir())) == 2
        assert "0 messages" in run(delete=False)  # UIDL: nothing new
        assert len(_server_subjects(pop3, client_context, pat)) == 2

        deliver(pop3_settings, pat, _message(3))
        # Delete mode: only the new message is retrieved; getmail then deletes what it has seen.
        assert "1 messages (" in run(delete=True)
        delivered = [p.read_bytes() for p in (maildir / "new").iterdir()]
        assert len(delivered) == 3
        assert any(b"Subject: client test 3" in m and b"\n.a line with a leading dot" in m for m in delivered)
        assert _server_subjects(pop3, client_context, pat) == []
    finally:
        shutil.rmtree(work)
