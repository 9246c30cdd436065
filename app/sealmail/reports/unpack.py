"""The report parts of a message, unpacked within a byte limit.

Reporters attach the report in a part whose media type or file name says what it is (RFC 7489
§7.2.1.1: ``application/gzip`` ``…xml.gz``, ``application/zip`` ``….zip``, or the XML itself;
RFC 8460 §5.3: ``application/tlsrpt+gzip`` or ``application/tlsrpt+json``). Many send
``application/octet-stream`` or a compressed type with no useful name, so a part is also known by its
first bytes (gzip ``1f 8b``, zip ``PK\\x03\\x04``), and what is inside by its first character.

Every unpacked report is at most ``limit`` bytes, counted as the bytes come out of the decompressor:
the sizes a zip or gzip header states are not trusted (a zip bomb states small ones), and reading
stops one byte past the limit.
"""

from __future__ import annotations

import email
import email.policy
import gzip
import io
import zipfile
import zlib
from dataclasses import dataclass
from typing import Literal

Kind = Literal["dmarc", "tlsrpt"]
_GZIP_MAGIC = b"\x1f\x8b"
_ZIP_MAGIC = b"PK\x03\x04"
_GZIP_TYPES = {"application/gzip", "application/x-gzip", "application/tlsrpt+gzip"}
_ZIP_TYPES = {"application/zip", "application/x-zip-compressed", "application/x-zip"}
_XML_TYPES = {"text/xml", "application/xml"}
_JSON_TYPES = {"application/tlsrpt+json", "application/json"}
MAX_PARTS = 8  # report parts read from one message; a reporter sends one
MAX_ZIP_MEMBERS = 8


class ReportError(Exception):
    """A part that is a report (by its type, name or bytes) could not be read. ``reply`` is the SMTP
    answer the message gets (RFC 3463 codes): the reporter's server learns why, nothing is kept."""

    def __init__(self, reason: str, reply: str = "550 5.6.0") -> None:
        super().__init__(reason)
        self.reason = reason
        self.reply = f"{reply} Report refused: {reason}"


class TooLarge(ReportError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason, "552 5.3.4")


@dataclass(frozen=True, slots=True)
class Unpacked:
    kind: Kind
    data: bytes  # the XML or JSON document, at most the limit
    name: str  # the part's file name, or its media type, for log lines


def _compression(  # noqa: PLR0911 - one answer per way reporters pack a report
    content_type: str, name: str, head: bytes
) -> Literal["gzip", "zip", "none"] | None:
    """How a part is packed, if it is a report part at all (None: it is not)."""
    lower = name.lower()
    if head.startswith(_GZIP_MAGIC) and (content_type in _GZIP_TYPES or lower.endswith((".gz", ".gzip"))):
        return "gzip"
    if head.startswith(_ZIP_MAGIC) and (content_type in _ZIP_TYPES or lower.endswith(".zip")):
        return "zip"
    if content_type in _GZIP_TYPES or lower.endswith((".gz", ".gzip")):
        return "gzip"  # claimed gzip: unpacking it says whether it is
    if content_type in _ZIP_TYPES or lower.endswith(".zip"):
        return "zip"
    if content_type in _XML_TYPES | _JSON_TYPES or lower.endswith((".xml", ".json")):
        return "none"
    if content_type == "application/octet-stream":
        if head.startswith(_GZIP_MAGIC):
            return "gzip"
        if head.startswith(_ZIP_MAGIC):
            return "zip"
    return None


def _kind(data: bytes, content_type: str, name: str) -> Kind:
    """What a report document is: by its media type first, then by its first character."""
    if content_type.startswith("application/tlsrpt") or name.lower().endswith((".json", ".json.gz")):
        return "tlsrpt"
    start = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if start == b"{":
        return "tlsrpt"
    if start == b"<":
        return "dmarc"
    raise ReportError(f"{name} holds neither a DMARC report (XML) nor a TLS report (JSON)")


def _gunzip(data: bytes, limit: int, name: str) -> bytes:
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as packed:
            out = packed.read(limit + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise ReportError(f"{name} is not a readable gzip file ({exc})") from None
    if len(out) > limit:
        raise TooLarge(f"{name} unpacks to more than {limit} bytes")
    return out


def _unzip(data: bytes, limit: int, name: str) -> list[tuple[str, bytes]]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ReportError(f"{name} is not a readable zip file ({exc})") from None
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        if not members:
            raise ReportError(f"{name} is an empty zip file")
        if len(members) > MAX_ZIP_MEMBERS:
            raise ReportError(f"{name} holds {len(members)} files; a report is one")
        out, total = [], 0
        for member in members:
            if member.flag_bits & 0x1:
                raise ReportError(f"{name} is encrypted")
            try:
                with archive.open(member) as inner:
                    content = inner.read(limit - total + 1)  # what comes out counts, not what the header says
            except (
                zipfile.BadZipFile,
                OSError,
                EOFError,
                NotImplementedError,
                zlib.error,
                RuntimeError,
                ValueError,
            ) as exc:
                raise ReportError(f"{name} could not be unpacked ({exc})") from None
            total += len(content)
            if total > limit:
                raise TooLarge(f"{name} unpacks to more than {limit} bytes")
            out.append((member.filename, content))
    return out


def report_parts(message: bytes, limit: int) -> list[Unpacked]:
    """The report documents a message carries (none: it carries no report part); ``ReportError``
    when a part that is a report cannot be unpacked within ``limit`` bytes."""
    parsed = email.message_from_bytes(message, policy=email.policy.compat32)
    found: list[Unpacked] = []
    for part in parsed.walk():
        if part.is_multipart():
            continue
        content_type = part.get_content_type().lower()
        name = part.get_filename() or ""
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes) or not payload:
            continue
        packing = _compression(content_type, name, payload[:4])
        if packing is None:
            continue
        label = name or content_type
        if len(found) >= MAX_PARTS:
            raise ReportError(f"the message carries more than {MAX_PARTS} report parts")
        if packing == "gzip":
            data = _gunzip(payload, limit, label)
            found.append(Unpacked(_kind(data, content_type, name.removesuffix(".gz")), data, label))
        elif packing == "zip":
            for inner_name, data in _unzip(payload, limit, label):
                found.append(Unpacked(_kind(data, "", inner_name), data, f"{label}:{inner_name}"))
        else:
            if len(payload) > limit:
                raise TooLarge(f"{label} is larger than {limit} bytes")
            found.append(Unpacked(_kind(payload, content_type, name), payload, label))
    return found
