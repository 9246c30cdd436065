"""``sealmail serve web``: the web admin over HTTPS on ``web_port`` (443; 8443 in dev), and plain HTTP
on ``http_port`` (80; 0: off) for ACME HTTP-01 answers and redirects to HTTPS (``plainhttp.py``).

Until an admin account exists, every page sits behind the browser's basic-auth gate; when
``AUTH_BASIC_USERNAME``/``AUTH_BASIC_PASSWORD`` are unset, a pair is generated once and kept in
``<data>/web-basic-auth.json`` (0600). Standard error (the journal, under systemd) gets the file's
path, never the password. The file is deleted once the first admin account exists.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING

from sealmail.appcontext import AppContext
from sealmail.http.server import HttpServer, settings_tls

if TYPE_CHECKING:
    from sealmail.settings import Settings

log = logging.getLogger("sealmail.web")


class WebComponent:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.ctx: AppContext | None = None
        self.server: HttpServer | None = None
        self.plain: HttpServer | None = None

    async def start(self) -> dict[str, int]:
        from sealmail.services import admins
        from sealmail.web.app import create_app

        self.ctx = AppContext(self.settings)
        basic_auth = None
        if await self.ctx.config_call(admins.has_admin, self.ctx.config):
            await self.ctx.config_call(admins.forget_basic_auth, self.settings)  # left by an older version
        else:
            user, password, made = await self.ctx.config_call(admins.basic_auth_credentials, self.settings)
            basic_auth = (user, password)
            if made:
                # Where to find it, not what it is: standard error is the journal under systemd.
                print(
                    "sealmail web: first run: the setup pages ask for basic authentication; the username and\n"
                    f"  password are in {self.settings.data_dir / admins.BASIC_AUTH_FILE} (mode 0600), deleted\n"
                    "  once the first admin account exists",
                    file=sys.stderr,
                    flush=True,
                )
            else:
                log.info("first run: the setup pages are behind basic authentication (AUTH_BASIC_USERNAME)")
        app = create_app(self.ctx, basic_auth=basic_auth)
        tls = settings_tls(self.settings)
        self.server = HttpServer(app, self.settings, "web", {"web": self.settings.web_port}, ssl_context=tls)
        ports = await self.server.start()
        if self.settings.http_port:
            from sealmail.web.plainhttp import PlainHttpApp

            # No TLS here: ACME answers and redirects to HTTPS only (plainhttp.py).
            plain = PlainHttpApp(self.settings.acme_webroot_path, self.settings.mail_hostname, ports["web"])
            self.plain = HttpServer(
                plain, self.settings, "web-http", {"http": self.settings.http_port}, ssl_context=None
            )
            ports |= await self.plain.start()
        return ports

    async def stop(self) -> None:
        if self.plain is not None:
            await self.plain.stop()
        if self.server is not None:
            await self.server.stop()
        if self.ctx is not None:
            await self.ctx.close()
