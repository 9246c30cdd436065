"""Modified UTF-7 for mailbox names (RFC 3501 §5.1.3), for clients that have not enabled UTF8=ACCEPT.

Printable ASCII stands for itself except "&", written "&-"; every other run of characters is
UTF-16BE in modified base64 (``,`` instead of ``/``, no padding) between "&" and "-".
"""

from __future__ import annotations

import base64
import binascii


def encode(name: str) -> str:
    out: list[str] = []
    run: list[str] = []

    def flush() -> None:
        if run:
            data = "".join(run).encode("utf-16-be")
            out.append("&" + base64.b64encode(data).decode("ascii").rstrip("=").replace("/", ",") + "-")
            run.clear()

    for ch in name:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            run.append(ch)
    flush()
    return "".join(out)


def decode(text: str) -> str:
    """Raises ValueError for text that is not valid modified UTF-7."""
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ord(ch) < 0x20 or ord(ch) > 0x7E:
            raise ValueError("modified UTF-7 is printable ASCII")
        if ch != "&":
            out.append(ch)
            i += 1
            continue
        end = text.find("-", i + 1)
        if end < 0:
            raise ValueError("unterminated shift in modified UTF-7")
        chunk = text[i + 1 : end]
        if not chunk:
            out.append("&")
        else:
            b64 = chunk.replace(",", "/")
            b64 += "=" * (-len(b64) % 4)
            try:
                data = base64.b64decode(b64, validate=True)
                decoded = data.decode("utf-16-be")
            except (binascii.Error, UnicodeDecodeError):
                raise ValueError("bad base64 in modified UTF-7") from None
            if any(0x20 <= ord(c) <= 0x7E for c in decoded):
                raise ValueError("printable ASCII must not be encoded in modified UTF-7")
            out.append(decoded)
        i = end + 1
    return "".join(out)
