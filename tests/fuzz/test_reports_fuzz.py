"""Fuzz targets: DMARC and TLS reports (sealmail/reports).

Whatever bytes arrive in a report part — mutated report documents, random archives — reading them
gives reports or a ``ReportError`` with its reason, never another exception (the MX answers the
reporter with that reason; anything else would be a 451 and a retry of the same bytes for days).
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sealmail.reports.read import read_reports
from sealmail.reports.unpack import ReportError

from .fuzzkit import fuzz
from reportkit import DmarcSpec, TlsSpec, dmarc_mail, dmarc_xml, gzipped, tls_json, tls_mail, zipped

XML, JSON = dmarc_xml(DmarcSpec()), tls_json(TlsSpec())


def _mutated(base: bytes) -> st.SearchStrategy[bytes]:
    """``base`` with a slice replaced by other bytes (structure kept around the damage)."""
    return st.tuples(
        st.integers(0, len(base)),
        st.integers(0, 64),
        st.binary(max_size=32) | st.sampled_from([b"<", b">", b"{", b'"']),
    ).map(lambda t: base[: t[0]] + t[2] + base[t[0] + t[1] :])


def _read(message: bytes) -> None:
    try:
        read_reports(message, 64 * 1024)
    except ReportError as exc:
        refused = exc
    else:
        return
    assert refused.reply[:3] in ("550", "552")
    assert refused.reason


@fuzz(scale=0.5)
@given(_mutated(XML), st.sampled_from(["gzip", "zip"]))
def test_a_damaged_dmarc_document_is_read_or_refused(document: bytes, packing: str) -> None:
    attach = gzipped(document) if packing == "gzip" else zipped(document, "r.xml")
    _read(dmarc_mail(DmarcSpec(), packing, attach=attach))


@fuzz(scale=0.5)
@given(_mutated(JSON))
def test_a_damaged_tls_document_is_read_or_refused(document: bytes) -> None:
    _read(tls_mail(TlsSpec(), "gzip", attach=gzipped(document)))


@fuzz(scale=0.5)
@given(_mutated(zipped(XML, "r.xml")) | _mutated(gzipped(JSON)) | st.binary(max_size=200))
def test_a_damaged_archive_is_read_or_refused(archive: bytes) -> None:
    _read(dmarc_mail(DmarcSpec(), "zip", attach=archive))
    _read(tls_mail(TlsSpec(), "gzip", attach=archive))
