"""An HTTPS server for MTA-STS policies (RFC 8461 §3.3): ``/.well-known/mta-sts.txt`` on a loopback
port, real TLS with a test certificate, in a thread. Other paths get 404.

    server = PolicyServer(port, certs, "version: STSv1\\nmode: enforce\\nmx: mx.c.test\\nmax_age: 86400\\n")
    server.stop()
"""

from __future__ import annotations

import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class PolicyServer:
    """``certs`` has ``cert`` and ``key`` paths (``ensure_dev_certificates`` or the doctor's test CA)."""

    def __init__(self, port: int, certs, policy: str) -> None:
        body = policy.encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200 if self.path == "/.well-known/mta-sts.txt" else 404)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(certs.cert, certs.key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
