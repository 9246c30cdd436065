"""The MIME test corpus: the files in this folder plus a few messages too large or too regular to keep as files.

Loaded by path (``importlib``) from the unit tests and the Dovecot comparison, so both see the same messages.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent


def deep_multipart(depth: int) -> bytes:
    """``depth`` multiparts nested inside each other around one text leaf (no boundary prefixes another)."""
    opening = b"".join(
        b"--b%03d\r\nContent-Type: multipart/mixed; boundary=b%03d\r\n\r\n" % (i, i + 1) for i in range(depth)
    )
    closing = b"".join(b"--b%03d--\r\n" % i for i in reversed(range(depth + 1)))
    return (
        b"Subject: nested %d deep\r\nContent-Type: multipart/mixed; boundary=b000\r\n\r\n" % depth
        + opening
        + b"--b%03d\r\n\r\nleaf\r\n" % depth
        + closing
    )


def deep_rfc822(depth: int) -> bytes:
    """``depth`` message/rfc822 entities, each the whole body of the one around it."""
    wrapper = b"Subject: level\r\nContent-Type: message/rfc822\r\n\r\n"
    return wrapper * depth + b"Subject: innermost\r\n\r\nleaf\r\n"


def huge_header(size: int = 200_000) -> bytes:
    """A header of ``size`` octets of Received lines, with the fields that matter at its end."""
    line = b"Received: from relay.example.org by relay.example.test with ESMTP id 0123456789abcdef;\r\n"
    count = size // len(line)
    return (
        line * count
        + b"Subject: huge header\r\nFrom: big@example.org\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nbody\r\n"
    )


def many_parts(count: int) -> bytes:
    """A multipart/mixed with ``count`` small text parts."""
    parts = b"".join(b"--m\r\nContent-Type: text/plain\r\n\r\npart %d\r\n" % i for i in range(count))
    return b"Subject: many parts\r\nContent-Type: multipart/mixed; boundary=m\r\n\r\n" + parts + b"--m--\r\n"


def load() -> dict[str, bytes]:
    """Every corpus message by name: ``name.eml`` files, ``garbage.bin`` and the generated ones."""
    messages = {path.name: path.read_bytes() for path in sorted(HERE.iterdir()) if path.suffix in {".eml", ".bin"}}
    messages["gen-deep-multipart-40"] = deep_multipart(40)
    messages["gen-deep-rfc822-30"] = deep_rfc822(30)
    messages["gen-huge-header"] = huge_header()
    messages["gen-many-parts-300"] = many_parts(300)
    return messages
