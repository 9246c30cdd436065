"""`sealmail dev` comes up, writes dev.json with listening ports, and stops cleanly."""

from __future__ import annotations

import contextlib
import http.client
import imaplib
import json
import os
import poplib
import signal
import smtplib
import socket
import ssl
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import redis
from devtree import port_env as _port_env
from devtree import start as _start
from devtree import stop as _stop
from devtree import wait_for_dev_json as _wait_for_dev_json
from rspamdkit import GTUBE

from sealmail import components

from support import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.tool("rspamd")]


def _processes_mentioning(marker: str) -> list[int]:
    """PIDs whose environment, command line or working directory names ``marker`` (the data directory).

    Redis rewrites its process title over its environment, but it runs in its data directory.
    """
    found = []
    needle = marker.encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if (
                needle in (entry / "environ").read_bytes()
                or needle in (entry / "cmdline").read_bytes()
                or os.readlink(entry / "cwd").startswith(marker)
            ):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _nothing_left(data_dir: Path, timeout: float = 5) -> None:
    """Every child of this tree exits (a stopped or killed supervisor leaves nothing running)."""
    try:
        wait_for(lambda: not _processes_mentioning(str(data_dir)), timeout=timeout, what="no process of this tree left")
    except AssertionError:
        assert _processes_mentioning(str(data_dir)) == []  # names the processes left
        raise


def test_dev_comes_up_and_stops_cleanly(sealmail_bin, clean_env, tmp_path) -> None:
    data_dir = tmp_path / "dev-data"
    env = {**clean_env, **_port_env()}
    started = time.time() - 1
    controller_password = b"\x00not read"
    proc = _start(sealmail_bin, data_dir, env)
    try:
        info = _wait_for_dev_json(proc, data_dir / "dev.json", started)
        assert info["domain"] == "example.test"
        assert info["alias"] == "demo@example.test"
        assert len(info["password"]) >= 20
        assert info["basic_auth"]["username"]
        assert len(info["basic_auth"]["password"]) >= 20
        assert Path(info["ca_cert"]).read_text().startswith("-----BEGIN CERTIFICATE-----")
        assert info["data_dir"] == str(data_dir)

        # Every available component reports every port it exports, and each one accepts connections.
        expected = {key for name in components.available() for key in components.PORTS[name]}
        assert set(info["ports"]) == expected
        assert info["addresses"] == ["127.0.0.1", "::1"]
        _every_port_answers_on_both_families(info)

        # The private Redis runs, with a password, and only for this tree.
        children = _processes_mentioning(str(data_dir))
        assert children, "sealmail dev started no child process"
        redis_pids = [p for p in children if b"redis-server" in Path(f"/proc/{p}/cmdline").read_bytes()]
        assert len(redis_pids) == 1
        with pytest.raises(redis.AuthenticationError):
            _redis_without_password(redis_pids[0])

        # A private rspamd scans what the MX receives: GTUBE is refused at DATA (RFC 3463 5.7.1).
        assert info["rspamd"]["private"] is True
        assert info["rspamd"]["url"].startswith("http://127.0.0.1:")
        with smtplib.SMTP("127.0.0.1", info["ports"]["mx"], timeout=30) as client:
            client.ehlo("client.example.org")
            client.mail("someone@example.org")
            client.rcpt("demo@example.test")
            code, reply = client.data(b"Subject: test\r\n\r\n" + GTUBE + b"\r\n")
        assert (code, reply) == (550, b"5.7.1 Gtube pattern")

        # The components learn through the private controller with its password, handed over in their
        # environment only; without it the controller answers 401, loopback too.
        controller = info["rspamd"]["controller_url"]
        assert httpx.get(f"{controller}/stat", timeout=10, trust_env=False).status_code == 401
        imap_pid = next(p for p in children if b"serve\x00imap" in Path(f"/proc/{p}/cmdline").read_bytes())
        environ = dict(
            line.split(b"=", 1)
            for line in Path(f"/proc/{imap_pid}/environ").read_bytes().split(b"\x00")
            if b"=" in line
        )
        assert environ[b"SEALMAIL_RSPAMD_CONTROLLER_URL"].decode() == controller
        controller_password = environ[b"SEALMAIL_RSPAMD_CONTROLLER_PASSWORD"]
        stat = httpx.get(
            f"{controller}/stat", headers={"Password": controller_password.decode()}, timeout=10, trust_env=False
        )
        assert stat.status_code == 200
        assert controller_password not in (data_dir / "dev.json").read_bytes()

        # The passwords do not leak into the command line of any child.
        for pid in children:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            assert info["password"].encode() not in cmdline
            assert controller_password not in cmdline
    finally:
        out = _stop(proc)
    assert "Sealmail is running on localhost" in out
    assert info["basic_auth"]["password"] in out
    assert controller_password.decode() not in out
    _nothing_left(data_dir)


# Each port's first answer, read by the protocol's own client (TLS verified against the dev CA, whose
# certificate names 127.0.0.1 and ::1): the greeting, or an HTTP status line.
def _smtp(address: str, port: int, tls: ssl.SSLContext, implicit: bool) -> str:
    if implicit:
        client = smtplib.SMTP_SSL(address, port, context=tls, timeout=10)
    else:
        client = smtplib.SMTP(address, port, timeout=10)
    with client:
        code, banner = client.ehlo("client.example.org")
        if not implicit:
            assert client.starttls(context=tls)[0] == 220
        return f"{code} {banner.decode()}"


def _imap(address: str, port: int, tls: ssl.SSLContext, implicit: bool) -> str:
    if implicit:
        client = imaplib.IMAP4_SSL(address, port, ssl_context=tls, timeout=10)
    else:
        client = imaplib.IMAP4(address, port, timeout=10)
        client.starttls(ssl_context=tls)
    greeting = client.welcome.decode()
    client.logout()
    return greeting


def _store(address: str, port: int, info: dict) -> int:
    """The store component answers a front-end holding a client certificate from the dev CA."""
    from websockets.sync.client import connect

    from sealmail.store import rpc

    tls = ssl.create_default_context(cafile=info["ca_cert"])
    tls_dir = Path(info["ca_cert"]).parent
    tls.load_cert_chain(tls_dir / "frontend-client.pem", tls_dir / "frontend-client.key")
    host = f"[{address}]" if ":" in address else address
    with connect(f"wss://{host}:{port}", ssl=tls, server_hostname="localhost", open_timeout=10) as ws:
        ws.send(rpc.request(1, None, "spool_size", ("0" * 24,), {}))
        return int(rpc.loads(ws.recv(10))["ok"])


def _pop3(address: str, port: int, tls: ssl.SSLContext, implicit: bool) -> str:
    if implicit:
        client = poplib.POP3_SSL(address, port, context=tls, timeout=10)
    else:
        client = poplib.POP3(address, port, timeout=10)
        client.stls(context=tls)
    greeting = client.getwelcome().decode()
    client.quit()
    return greeting


def _managesieve(address: str, port: int, tls: ssl.SSLContext) -> bool:
    """The capabilities and OK at connect, STARTTLS, then the capabilities again, without STARTTLS
    and with PLAIN (RFC 5804 §1.7, §2.2)."""

    def capabilities(stream) -> list[bytes]:
        lines = []
        while not (line := stream.readline()).startswith(b"OK"):
            assert line.startswith(b'"'), line
            lines.append(line)
        return lines

    with socket.create_connection((address, port), timeout=10) as sock:
        with sock.makefile("rb") as plain:
            before = capabilities(plain)
            sock.sendall(b"STARTTLS\r\n")
            assert plain.readline().startswith(b"OK")
        with tls.wrap_socket(sock, server_hostname=address) as secure, secure.makefile("rb") as stream:
            after = capabilities(stream)
            secure.sendall(b"LOGOUT\r\n")
    sasl = b'"SASL" "PLAIN SCRAM-SHA-1 SCRAM-SHA-256"\r\n'  # RFC 5804 §2.1: SCRAM-SHA-1 beside PLAIN
    return b'"STARTTLS"\r\n' in before and b'"STARTTLS"\r\n' not in after and sasl in after


def _https(address: str, port: int, tls: ssl.SSLContext, path: str) -> int:
    client = http.client.HTTPSConnection(address, port, context=tls, timeout=10)
    try:
        client.request("GET", path)
        return client.getresponse().status
    finally:
        client.close()


def _http_redirect(address: str, port: int, web_port: int) -> bool:
    """The plain-HTTP port sends a browser to the web admin over HTTPS (RFC 9110 §15.4.2)."""
    client = http.client.HTTPConnection(address, port, timeout=10)
    try:
        client.request("GET", "/admin", headers={"Host": "localhost"})
        response = client.getresponse()
        return response.status == 301 and response.getheader("location") == f"https://localhost:{web_port}/admin"
    finally:
        client.close()


def _every_port_answers_on_both_families(info: dict) -> None:
    """RFC 6540: every service answers over IPv6 as over IPv4 (RFC 4291 §2.5.3 ::1 beside 127.0.0.1)."""
    tls = ssl.create_default_context(cafile=info["ca_cert"])
    checks = {
        "mx": lambda a, p: _smtp(a, p, tls, implicit=False).startswith("250 localhost"),
        "submission_tls": lambda a, p: _smtp(a, p, tls, implicit=True).startswith("250 localhost"),
        "submission": lambda a, p: _smtp(a, p, tls, implicit=False).startswith("250 localhost"),
        "imaps": lambda a, p: _imap(a, p, tls, implicit=True).startswith("* OK"),
        "imap": lambda a, p: _imap(a, p, tls, implicit=False).startswith("* OK"),
        "pop3s": lambda a, p: _pop3(a, p, tls, implicit=True).startswith("+OK"),
        "pop3": lambda a, p: _pop3(a, p, tls, implicit=False).startswith("+OK"),
        "managesieve": lambda a, p: _managesieve(a, p, tls),
        "caldav": lambda a, p: _https(a, p, tls, "/.well-known/caldav") < 500,
        "carddav": lambda a, p: _https(a, p, tls, "/.well-known/carddav") < 500,
        "web": lambda a, p: _https(a, p, tls, "/") < 500,
        "http": lambda a, p: _http_redirect(a, p, info["ports"]["web"]),
        "api": lambda a, p: _https(a, p, tls, "/") < 500,
        "store": lambda a, p: _store(a, p, info) == 0,
    }
    assert set(info["ports"]) <= set(checks), "a new port needs its check here"
    for key, port in info["ports"].items():
        for address in ("127.0.0.1", "::1"):
            try:
                answered = checks[key](address, port)
            except (OSError, imaplib.IMAP4.error, poplib.error_proto, smtplib.SMTPException) as exc:
                pytest.fail(f"{key} on {address} port {port}: {exc!r}")
            assert answered, f"{key} on {address} port {port}"


def _listening_ports(pid: int) -> list[int]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                ports.append(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def _redis_without_password(pid: int) -> None:
    (port,) = _listening_ports(pid)
    redis.Redis(host="127.0.0.1", port=port, socket_timeout=5).set("probe", "1")


def test_second_run_reuses_data_and_password(sealmail_bin, clean_env, tmp_path) -> None:
    data_dir = tmp_path / "dev-data"
    env = {**clean_env, **_port_env()}
    first_start = time.time() - 1
    proc = _start(sealmail_bin, data_dir, env)
    try:
        first = _wait_for_dev_json(proc, data_dir / "dev.json", first_start)
        # A second supervisor on the same data directory refuses to start.
        clash = subprocess.run(
            [sealmail_bin, "dev", "--data-dir", str(data_dir)],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert clash.returncode == 1
        assert "another sealmail dev" in clash.stderr
        # A second terminal manages the running instance through the same data directory.
        listed = subprocess.run(
            [sealmail_bin, "alias", "list", "--json", "--data-dir", str(data_dir)],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        assert [a["address"] for a in json.loads(listed.stdout)] == ["demo@example.test"]
    finally:
        _stop(proc)

    second_start = time.time()
    # The second run hands MX connections to two session processes: still both families on one port.
    proc = _start(sealmail_bin, data_dir, {**env, "SEALMAIL_MX_PROCESSES": "2"})
    try:
        second = _wait_for_dev_json(proc, data_dir / "dev.json", second_start)
        tls = ssl.create_default_context(cafile=second["ca_cert"])
        for address in ("127.0.0.1", "::1"):
            assert _smtp(address, second["ports"]["mx"], tls, implicit=False).startswith("250 localhost")
    finally:
        _stop(proc)
    assert second["password"] == first["password"]
    assert second["basic_auth"] == first["basic_auth"]
    assert second["alias"] == first["alias"]


def test_sigint_like_ctrl_c_stops_everything(sealmail_bin, clean_env, tmp_path) -> None:
    data_dir = tmp_path / "dev-data"
    started = time.time() - 1
    proc = _start(sealmail_bin, data_dir, {**clean_env, **_port_env()})
    _wait_for_dev_json(proc, data_dir / "dev.json", started)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=30)
    assert proc.returncode == 0
    _nothing_left(data_dir)


def test_killed_supervisor_takes_its_children_along(sealmail_bin, clean_env, tmp_path) -> None:
    """Even `kill -9` of the supervisor leaves nothing running (children have a parent-death signal)."""
    data_dir = tmp_path / "dev-data"
    started = time.time() - 1
    proc = _start(sealmail_bin, data_dir, {**clean_env, **_port_env()})
    _wait_for_dev_json(proc, data_dir / "dev.json", started)
    proc.kill()
    proc.communicate(timeout=30)
    _nothing_left(data_dir, timeout=15)


def _open_files(pid: int) -> set[str]:
    found = set()
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                found.add(os.readlink(fd))
    return found


def test_dev_split_reaches_mailboxes_through_the_store(sealmail_bin, clean_env, tmp_path) -> None:
    """`sealmail dev --split`: the front-ends open mailboxes only through the store component (issue 19)."""
    data_dir = tmp_path / "dev-split"
    env = {**clean_env, **_port_env()}
    started = time.time() - 1
    proc = subprocess.Popen(
        [sealmail_bin, "dev", "--split", "--data-dir", str(data_dir)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        info = _wait_for_dev_json(proc, data_dir / "dev.json", started)
        assert info["split"] is True
        assert info["ports"]["store"] > 0
        imap_pids = [
            p for p in _processes_mentioning(str(data_dir)) if b"imap" in Path(f"/proc/{p}/cmdline").read_bytes()
        ]
        assert imap_pids
        environ = Path(f"/proc/{imap_pids[0]}/environ").read_bytes()
        assert f"SEALMAIL_STORE_URL=wss://localhost:{info['ports']['store']}".encode() in environ
        assert b"SEALMAIL_CONFIG_BACKEND=store\x00" in environ  # the config store, too, is the data host's
        tls = ssl.create_default_context(cafile=info["ca_cert"])
        client = imaplib.IMAP4_SSL("127.0.0.1", info["ports"]["imaps"], ssl_context=tls, timeout=30)
        client.login(info["alias"], info["password"])
        assert client.append("INBOX", None, None, b"Subject: split\r\n\r\nthrough the store\r\n")[0] == "OK"
        assert client.select("INBOX")[0] == "OK"
        store_pids = [
            p
            for p in _processes_mentioning(str(data_dir))
            if b"serve\x00store" in Path(f"/proc/{p}/cmdline").read_bytes()
        ]
        assert len(store_pids) == 1
        config_db = str(data_dir / "config.sqlite")
        openers = {p for p in _processes_mentioning(str(data_dir)) if config_db in _open_files(p)}
        assert openers == set(store_pids)  # only the data host opens config.sqlite
        os.kill(store_pids[0], signal.SIGKILL)  # the supervisor restarts it; the session carries on

        def fetched() -> bool:
            try:
                return client.uid("FETCH", "1:*", "(FLAGS)")[0] == "OK"
            except imaplib.IMAP4.error:
                return False

        wait_for(fetched, timeout=60, what="IMAP working again once the store is back")
        client.logout()
    finally:
        _stop(proc)
    _nothing_left(data_dir)
