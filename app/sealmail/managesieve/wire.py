"""What the ManageSieve server writes (RFC 5804 §4): strings, responses, capability lines. No I/O.

Every server string is quoted when it can be (at most 1024 octets of UTF-8 without NUL, CR or LF)
and a literal-s2c ``{N}`` otherwise; clients such as sieve-connect read capabilities and script
names only in the quoted form, and scripts (which hold line ends) only as literals.
"""

from __future__ import annotations

MAX_QUOTED = 1024  # RFC 5804 §4: quoted is limited to 1024 octets between the DQUOTEs


def string(value: str | bytes) -> bytes:
    """``value`` as a ManageSieve string: quoted, or a literal when it cannot be one."""
    data = value.encode("utf-8") if isinstance(value, str) else value
    if len(data) <= MAX_QUOTED and not any(c in data for c in b"\x00\r\n") and _is_utf8(data):
        return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
    return b"{%d}\r\n%s" % (len(data), data)


def literal(data: bytes) -> bytes:
    """Always a literal (GETSCRIPT's answer, §2.9: the script's octets as they were stored)."""
    return b"{%d}\r\n%s" % (len(data), data)


def response(status: str, text: str | None = None, code: str | bytes | None = None) -> bytes:
    """``OK``/``NO``/``BYE`` [SP "(" resp-code ")"] [SP string] CRLF (RFC 5804 §4 response-oknobye)."""
    out = status.encode("ascii")
    if code is not None:
        out += b" (" + (code.encode("ascii") if isinstance(code, str) else code) + b")"
    if text is not None:
        out += b" " + string(text)
    return out + b"\r\n"


def tag_code(tag: bytes) -> bytes:
    """The TAG response code with the NOOP's string (RFC 5804 §2.13)."""
    return b"TAG " + string(tag)


def capability(name: str, value: str | None = None) -> bytes:
    """One single-capability line (RFC 5804 §1.7, §4)."""
    line = string(name)
    if value is not None:
        line += b" " + string(value)
    return line + b"\r\n"


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
