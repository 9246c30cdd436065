"""Run Sealmail's IMAP server on loopback ports with a fresh account, for external test tools (imaptest).

    .venv/bin/python scripts/imap_test_server.py DIR

Writes DIR/server.json with the ports, the user and the password once it listens; stops on SIGTERM.
Argon2 runs at its minimum cost: the tools log in thousands of times.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path


async def main(base: Path) -> None:
    from sealmail.config.sqlite import SQLiteConfigStore
    from sealmail.imap.server import ImapComponent
    from sealmail.services import aliases, credentials, domains
    from sealmail.settings import Settings
    from sealmail.tls.devca import ensure_dev_certificates

    certs = ensure_dev_certificates(base / "tls")
    settings = Settings(
        data_dir=base / "data",
        tls_cert_file=certs.cert,
        tls_key_file=certs.key,
        bind_addresses=["127.0.0.1"],
        imap_port=0,
        imaps_port=0,
        imap_plaintext_login=True,  # loopback only: the tools speak plain IMAP
        imap_max_connections_per_ip=1000,
        argon2_time_cost=1,
        argon2_memory_kib=8192,
        log_level="WARNING",
    )
    config = SQLiteConfigStore(settings.config_db_path)
    domains.add_domain(config, "example.test")
    aliases.add_alias(config, "imaptest@example.test")
    password = credentials.set_password(config, settings, "imaptest@example.test")
    config.close()
    component = ImapComponent(settings)
    ports = await component.start()
    info = {"ports": ports, "user": "imaptest@example.test", "password": password, "ca_cert": str(certs.ca_cert)}
    (base / "server.json").write_text(json.dumps(info))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await component.stop()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
