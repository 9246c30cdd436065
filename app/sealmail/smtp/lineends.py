"""Line endings of outgoing mail: made CRLF before anything is signed or sealed.

SMTP carries lines ending in CRLF (RFC 5321 §2.3.8: a bare CR or bare LF is not a line ending, and a
conforming client does not send one). The sending library (aiosmtplib) turns every bare CR and bare
LF into CRLF as it writes DATA, and adds a last CRLF when the message has none. A signature computed
over the message before that change covers other bytes than the receiver gets: a bare CR in a body
made both DKIM signatures and the ARC message signature fail at every verifier.

We normalise rather than refuse (``550 5.6.0``): clients that send bare LF or a stray CR are
common and their users cannot fix them, and Postfix, the reference here, normalises too (its
``smtpd`` stores lines and the queue writes CRLF). The rule is exactly the library's, so the
signed bytes are the sent bytes (a test compares the two). Submission and the MX's forwarding path
call this before signing and sealing; mail stored locally stays byte for byte as it came.
"""

from __future__ import annotations

import re

_LINE_END = re.compile(rb"\r\n|\n|\r(?!\n)")


def to_wire(message: bytes) -> bytes:
    """Every bare CR and bare LF as CRLF, and a final CRLF: the bytes DATA will carry."""
    if message.count(b"\n") != message.count(b"\r\n") or message.count(b"\r") != message.count(b"\r\n"):
        message = _LINE_END.sub(b"\r\n", message)
    if not message.endswith(b"\r\n"):
        message += b"\r\n"
    return message
