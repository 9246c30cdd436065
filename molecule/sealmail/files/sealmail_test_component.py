"""Test double of a Sealmail component, for molecule/sealmail only (never installed elsewhere).

Registers "web" as an implicit-TLS listener on the web port, so the sealmail role's units,
hardening, capabilities and restart logic are tested before the real components exist. It uses
only the interface every component has: ``start() -> {port_key: port}`` and ``stop()``.
"""

from __future__ import annotations

import asyncio
import ssl

try:
    from sealmail import components
except Exception:  # noqa: BLE001 - the package may be half-installed while pip runs
    components = None


class TestWeb:
    def __init__(self, settings) -> None:
        self.settings = settings
        self.servers: list[asyncio.Server] = []

    async def start(self) -> dict[str, int]:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(self.settings.tls_cert_file), str(self.settings.tls_key_file))

        async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
            await writer.drain()
            writer.close()

        from sealmail.net.listen import listen_sockets

        # The same listening addresses as the real components (SEALMAIL_BIND_ADDRESSES).
        for sock in listen_sockets(self.settings, self.settings.web_port):
            self.servers.append(await asyncio.start_server(answer, sock=sock, ssl=context))
        return {"web": self.settings.web_port}

    async def stop(self) -> None:
        for server in self.servers:
            server.close()
            await server.wait_closed()


def make(settings) -> TestWeb:
    return TestWeb(settings)


if components is not None and "web" not in components.REGISTRY:
    components.REGISTRY["web"] = "sealmail_test_component:make"
