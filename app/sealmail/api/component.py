"""``sealmail serve api``: the REST API over HTTPS on ``api_port`` (4000)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sealmail.appcontext import AppContext
from sealmail.http.server import HttpServer, settings_tls

if TYPE_CHECKING:
    from sealmail.settings import Settings


class ApiComponent:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.ctx: AppContext | None = None
        self.server: HttpServer | None = None

    async def start(self) -> dict[str, int]:
        from sealmail.api.app import create_app

        self.ctx = AppContext(self.settings)
        app = create_app(self.ctx)
        tls = settings_tls(self.settings)
        self.server = HttpServer(app, self.settings, "api", {"api": self.settings.api_port}, ssl_context=tls)
        return await self.server.start()

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()
        if self.ctx is not None:
            await self.ctx.close()
