"""COMPRESS (RFC 4978): DEFLATE on the connection once the client is authenticated.

The session only decides; the connection (``sealmail.net.server.Connection.compress``, with
``sealmail.net.deflate``) does the compressing, as it does TLS for STARTTLS. The line and literal
limits of ``server.read_command`` then count inflated octets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sealmail.imap.replies import Silent, bad, no

if TYPE_CHECKING:
    from sealmail.imap import parser as p
    from sealmail.imap.session import Session


async def cmd_compress(s: Session, c: p.Compress) -> None:
    if c.mechanism != "DEFLATE":
        raise bad(f"Unknown compression mechanism {c.mechanism[:20]}")
    if s.conn.compressed:
        raise no("DEFLATE is active already", "COMPRESSIONACTIVE")  # RFC 4978 §3
    # RFC 4978 §3: the tagged OK is the last response in clear; compression starts right after its CRLF.
    await s.conn.compress(f"{c.tag} OK DEFLATE active\r\n".encode())
    s.log.info("compression on")
    raise Silent()
