"""Debian's Roundcube 1.6 against our servers: the webmail under PHP's built-in web server, and a relay
that records every line our IMAP server sends it.

``Roundcube`` writes a config directory of its own (``ROUNDCUBE_CONFIG_DIR``, read by the package's
``program/include/iniset.php``; nothing under /etc is changed or read but the package's
``defaults.inc.php`` and ``mimetypes.php``) and runs ``php -S`` on the package's document root.

``ImapRecorder`` stands between Roundcube and the IMAP port: it ends Roundcube's TLS with the tree's
certificate (Roundcube verifies it against the tree's CA), opens its own verified TLS connection to
the server, relays the bytes both ways unchanged, and keeps each logical line (a literal's octets
replaced by their count) so a test can see every command and every tagged answer of a whole session.
Credentials are masked as they are read: nothing secret is kept.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from support import free_port, missing, require_tool

DOCROOT = Path("/var/lib/roundcube/public_html")
PACKAGE_CONFIG = Path("/etc/roundcube")
# What Roundcube, its managesieve plugin and PHP's SQLite need (scripts/system-deps test installs them;
# php-cgi first, so apt takes it for php8.2's web server alternative instead of Apache's module).
PACKAGES = "php-cgi php-cli php-sqlite3 php-intl php-mbstring roundcube-core roundcube-plugins roundcube-sqlite3"

_LITERAL = re.compile(rb"\{(\d+)\+?\}$")


def require_roundcube() -> str:
    """The php binary, once Roundcube and its plugins are installed (else skip, or fail under CI)."""
    php = require_tool("php")
    for needed in (DOCROOT / "index.php", PACKAGE_CONFIG / "defaults.inc.php", DOCROOT / "plugins/managesieve"):
        if not needed.exists():
            missing(f"Roundcube ({needed})", PACKAGES)
    return php


@dataclass(frozen=True)
class Line:
    """One logical line of one connection: ``side`` is C (Roundcube) or S (our server)."""

    connection: int
    side: str
    text: str

    @property
    def tag(self) -> str:
        return self.text.split(" ", 1)[0]

    @property
    def words(self) -> list[str]:
        return self.text.split(" ")


class _Lines:
    """Cuts one direction of a connection into logical lines: a line with ``{N}`` or ``{N+}`` at its
    end goes on after the N octets (RFC 9051 §4.3), which are kept as ``{N}`` only."""

    def __init__(self) -> None:
        self.buffer = b""
        self.pending = b""
        self.literal = 0

    def feed(self, data: bytes) -> list[bytes]:
        self.buffer += data
        done = []
        while True:
            if self.literal:
                taken = self.buffer[: self.literal]
                self.buffer = self.buffer[len(taken) :]
                self.literal -= len(taken)
                if self.literal:
                    return done
                continue
            end = self.buffer.find(b"\r\n")
            if end < 0:
                return done
            line, self.buffer = self.buffer[:end], self.buffer[end + 2 :]
            self.pending += line
            found = _LITERAL.search(line)
            if found:
                self.literal = int(found.group(1))
                continue
            done.append(self.pending)
            self.pending = b""


class ImapRecorder:
    """A TLS relay in front of an IMAP port, on its own event-loop thread; ``lines`` is what it saw."""

    def __init__(self, upstream_port: int, cert: Path, key: Path, ca_cert: Path) -> None:
        self.upstream_port = upstream_port
        self.lines: list[Line] = []
        self.opaque: list[int] = []  # connections that switched to something the recorder cannot read
        self._ids = itertools.count(1)
        self._outer = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._outer.load_cert_chain(cert, key)
        self._inner = ssl.create_default_context(cafile=str(ca_cert))
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="imap-recorder", daemon=True)
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._relay, "127.0.0.1", 0, ssl=self._outer), self._loop
        ).result(10)
        self.port: int = self._server.sockets[0].getsockname()[1]

    def mark(self) -> int:
        """Where the lines of what happens next begin (``since``)."""
        return len(self.lines)

    def since(self, mark: int) -> list[Line]:
        return list(self.lines[mark:])

    def stop(self) -> None:
        async def close() -> None:
            self._server.close()
            await self._server.wait_closed()
            relays = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in relays:
                task.cancel()
            await asyncio.gather(*relays, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = next(self._ids)
        try:
            up_reader, up_writer = await asyncio.open_connection(
                "127.0.0.1", self.upstream_port, ssl=self._inner, server_hostname="localhost"
            )
        except OSError:
            writer.close()
            return
        state = {"authenticating": False}
        await asyncio.gather(
            self._pump(reader, up_writer, connection, "C", state),
            self._pump(up_reader, writer, connection, "S", state),
        )

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, connection: int, side: str, state: dict
    ) -> None:
        lines = _Lines()
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
                for raw in lines.feed(data):
                    self._keep(connection, side, raw.decode("utf-8", "replace"), state)
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    def _keep(self, connection: int, side: str, text: str, state: dict) -> None:
        words = text.split(" ")
        if side == "C":
            command = words[1].upper() if len(words) > 1 else ""
            if state["authenticating"]:
                text = "***"  # a SASL response line
            elif command in ("LOGIN", "AUTHENTICATE"):
                text = " ".join(words[: 3 if command == "AUTHENTICATE" else 2]) + " ***"
                state["authenticating"] = command == "AUTHENTICATE"
            elif command == "COMPRESS":
                self.opaque.append(connection)
        elif words[0] not in ("*", "+"):
            state["authenticating"] = False
        self.lines.append(Line(connection, side, text))


def commands(lines: list[Line]) -> list[str]:
    """The command names Roundcube sent (``UID SORT`` counts as ``SORT``)."""
    found = []
    for line in lines:
        if line.side == "C" and len(line.words) > 1 and line.text != "***":
            name = line.words[1].upper()
            if name == "UID" and len(line.words) > 2:
                name = line.words[2].upper()
            found.append(name)
    return found


def tagged_failures(lines: list[Line]) -> list[str]:
    """Our server's tagged NO and BAD answers, each after the command it answered, and any untagged
    BAD (RFC 9051 §7.1), as ``connection: command => answer``."""
    asked = {(line.connection, line.tag): line.text for line in lines if line.side == "C"}
    failed = []
    for line in lines:
        if line.side != "S" or len(line.words) < 2:
            continue
        status = line.words[1].upper()
        if (line.tag not in ("*", "+") and status in ("NO", "BAD")) or (line.tag == "*" and status == "BAD"):
            command = asked.get((line.connection, line.tag), "?")
            failed.append(f"{line.connection}: {command} => {line.text}")
    return failed


class Roundcube:
    """Debian's Roundcube under ``php -S`` on a free loopback port, configured in ``directory``."""

    def __init__(
        self,
        php: str,
        directory: Path,
        *,
        imap_port: int,
        managesieve_port: int,
        submission_port: int,
        ca_cert: Path,
    ) -> None:
        self.directory = directory
        config = directory / "config"
        self.logs = directory / "logs"
        for made in (config, self.logs, directory / "temp"):
            made.mkdir(parents=True, exist_ok=True)
        # The package's defaults beside our config.inc.php: Roundcube reads both from one directory.
        for name in ("defaults.inc.php", "mimetypes.php"):
            shutil.copyfile(PACKAGE_CONFIG / name, config / name)
        (config / "config.inc.php").write_text(
            _config(directory, imap_port, managesieve_port, submission_port, ca_cert)
        )
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self._output = (directory / "php-server.log").open("wb")
        self.proc = subprocess.Popen(
            [php, "-S", f"127.0.0.1:{self.port}", "-t", str(DOCROOT)],
            cwd=directory,
            env={"PATH": "/usr/bin:/bin", "ROUNDCUBE_CONFIG_DIR": str(config), "TZ": "UTC"},
            stdout=self._output,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise AssertionError(f"php -S did not start:\n{self.server_log()}") from None
                time.sleep(0.05)

    def errors(self) -> list[str]:
        """Roundcube's error log without PHP 8.2's deprecation notices about PEAR (the package's, not ours)."""
        log = self.logs / "errors.log"
        if not log.exists():
            return []
        return [line for line in log.read_text().splitlines() if line.strip() and "PHP Deprecated" not in line]

    def server_log(self) -> str:
        self._output.flush()
        return (self.directory / "php-server.log").read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._output.close()


def _php(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _config(directory: Path, imap_port: int, managesieve_port: int, submission_port: int, ca_cert: Path) -> str:
    verified = f"['ssl' => ['verify_peer' => true, 'verify_peer_name' => true, 'cafile' => {_php(str(ca_cert))}]]"
    return f"""<?php
$config = [];
$config['db_dsnw'] = {_php(f"sqlite:///{directory}/roundcube.db?mode=0600")};
$config['log_dir'] = {_php(str(directory / "logs"))};
$config['temp_dir'] = {_php(str(directory / "temp"))};
$config['des_key'] = {_php(_des_key())};
$config['product_name'] = 'Roundcube against Sealmail';
$config['skin'] = 'elastic';
$config['enable_spellcheck'] = false;
$config['plugins'] = ['managesieve'];
// Implicit TLS, verified against the tree's CA by the name in its certificate.
$config['imap_host'] = 'ssl://localhost:{imap_port}';
$config['imap_conn_options'] = {verified};
$config['smtp_host'] = 'tls://localhost:{submission_port}';
$config['smtp_conn_options'] = {verified};
// ManageSieve with STARTTLS (RFC 5804 §2.2); Roundcube 1.6 takes the scheme and port in the host.
$config['managesieve_host'] = 'tls://localhost:{managesieve_port}';
$config['managesieve_conn_options'] = {verified};
// RFC 5228 §2.7.2 / RFC 5490: folder names in a script are UTF-8. The plugin's own default is
// modified UTF-7 (the value upstream's config.inc.php.dist sets is UTF-8; Debian ships no value).
$config['managesieve_mbox_encoding'] = 'UTF-8';
"""


def _des_key() -> str:
    import secrets

    return secrets.token_urlsafe(18)[:24]
