"""The private rspamd's milter proxy (``LocalRspamd(milter=True)``), which ``bench/smtp_inbound.py
--rspamd`` puts beside Postfix, spoken to on a real socket as Postfix speaks to it: the Sendmail
milter protocol, version 6 (``smtpd_milters``, ``milter_protocol = 6``). Off by default, so ``sealmail
dev`` and the other tests run no proxy worker.
"""

from __future__ import annotations

import socket
import struct

import pytest
from rspamdkit import GTUBE

from sealmail.spam.localrspamd import LocalRspamd, default_cache_dir

pytestmark = pytest.mark.tool("rspamd", "rspamadm")


def test_the_proxy_worker_is_off_unless_asked_for(tmp_path) -> None:
    local = LocalRspamd(tmp_path / "rspamd", tmp_path / "cache")
    local.write_config()
    assert (local.confdir / "override.d" / "worker-proxy.inc").read_text() == "enabled = false;\n"
    assert local.milter_port == 0


def _packet(command: bytes, data: bytes = b"") -> bytes:
    return struct.pack(">I", len(data) + 1) + command + data


def _reply(sock: socket.socket) -> tuple[bytes, bytes]:
    stream = sock.makefile("rb")
    (length,) = struct.unpack(">I", stream.read(4))
    body = stream.read(length)
    return body[:1], body[1:]


def _milter_transaction(port: int, header: list[tuple[str, str]], body: bytes) -> tuple[bytes, bytes]:
    """One message through the milter; returns its final reply (``a`` accept, ``y`` an SMTP reply...)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        # Version 6, every action, and let the milter choose its "no reply" steps (SMFIP_NR_*): rspamd
        # answers only at the end of the body, as Postfix lets it.
        sock.sendall(_packet(b"O", struct.pack(">III", 6, 0x1FF, 0x001FF000 | 0x80)))
        command, data = _reply(sock)
        assert command == b"O", (command, data)
        _, _, steps = struct.unpack(">III", data)
        silent = {b"C": 0x1000, b"H": 0x2000, b"M": 0x4000, b"R": 0x8000, b"L": 0x80, b"N": 0x40000, b"B": 0x80000}
        exchange = [
            (b"C", b"client.example.org\0" + b"4" + struct.pack(">H", 40000) + b"127.0.0.1\0"),
            (b"H", b"client.example.org\0"),
            (b"M", b"<someone@example.org>\0"),
            (b"R", b"<demo@example.test>\0"),
            *((b"L", f"{name}\0 {value}\0".encode()) for name, value in header),
            (b"N", b""),
            (b"B", body),
        ]
        for command, data in exchange:
            sock.sendall(_packet(command, data))
            if not steps & silent[command]:
                assert _reply(sock)[0] == b"c"  # continue
        sock.sendall(_packet(b"E"))  # end of body: the scan, then the verdict
        while True:
            command, data = _reply(sock)
            if command not in b"hm+-":  # header changes come before the verdict
                sock.sendall(_packet(b"Q"))
                return command, data


@pytest.mark.slow
def test_the_milter_proxy_scans_each_message_once_itself(tmp_path) -> None:
    local = LocalRspamd(tmp_path / "rspamd", default_cache_dir(), milter=True)
    local.start(timeout=240)  # a cold hyperscan cache compiles for a while
    try:
        assert local.milter_port not in (0, local.normal_port)
        before = local.scanned()
        header = [("From", "Someone <someone@example.org>"), ("To", "demo@example.test"), ("Subject", "Lunch")]
        assert _milter_transaction(local.milter_port, header, b"See you at lunch tomorrow.\r\n") == (b"a", b"")
        command, text = _milter_transaction(local.milter_port, header, GTUBE + b"\r\n")
        assert (command, text) == (b"y", b"554 5.7.1 Gtube pattern\0")  # rspamd's reject, as an SMTP reply
        # Scanned by the proxy itself (self_scan), once each: no upstream, no second scan.
        assert local.scanned() == before + 2
    finally:
        local.stop()
