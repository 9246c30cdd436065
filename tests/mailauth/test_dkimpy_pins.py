"""What sealmail relies on in dkimpy and pyspf, pinned: an upgrade that changes it fails here.

``mailauth.dkimsigner`` and ``mailauth.spf`` subclass the libraries' classes and write again the
few methods that reach RSA, canonicalization and DNS (the libraries offer no hook for them); the
libraries' modules are left as shipped. So these tests pin:

* the source of each library method replaced, and of each library method whose calls into the
  replaced ones we rely on (a change to one means reading it against our override again);
* that our signatures are dkimpy's own, byte for byte, where RFC 6376 and dkimpy agree;
* that importing and using sealmail leaves dkimpy and pyspf as shipped.
"""

from __future__ import annotations

import base64
import hashlib
import inspect
import subprocess
import sys
import time
from importlib import metadata

import dkim
import pytest
import spf
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from sealmail.mailauth import dkimsigner
from sealmail.mailauth import spf as spfcheck
from sealmail.mailauth.dnsview import MemoryDns

# sha256 (first 16 hex digits) of inspect.getsource() in dkimpy 1.1.8 and pyspf 2.0.14.
PINNED = {
    # replaced by our overrides
    "dkim.DomainSigner.gen_header": "e86f61152fe59398",
    "dkim.DomainSigner.verify_sig_process": "ab008897178aa566",
    "dkim.DKIM.sign": "427b6d31fef46a04",
    "dkim.ARC.sorted_arc_headers": "3675cb3f7928e75f",
    "spf.query.dns": "63ad0ef0805e0745",
    # calling into them (verify_sig -> verify_sig_process; ARC.sign -> gen_header; ...)
    "dkim.DomainSigner.verify_sig": "32c48c63dfd05f78",
    "dkim.DKIM.verify": "c5f491a1a4f8431c",
    "dkim.ARC.sign": "1bf388b3fd48ffc5",
    "dkim.ARC.verify": "2d19b834ff00b0e7",
    "dkim.ARC.verify_instance": "5700e3501ee49b23",
    "dkim.hash_headers": "216b8155ca91b6f8",
    "spf.query.check": "c887d2d18342e744",
    "spf.check2": "39e2b46d9e7ed4e0",  # what mailauth.spf.check does with its own query
    # what mailauth.spf.count_lookups reads each record with (through our dns)
    "spf.query.dns_spf": "8c9f0a301e8926e8",
    "spf.query.dns_txt": "130050dad70c9139",
}
LIBRARIES = {"dkim": dkim, "spf": spf}


def _source_hash(dotted: str) -> str:
    module, *path = dotted.split(".")
    obj = LIBRARIES[module]
    for part in path:
        obj = getattr(obj, part)
    return hashlib.sha256(inspect.getsource(obj).encode()).hexdigest()[:16]


def test_library_versions_are_the_pinned_ones() -> None:
    """The versions the hashes below were taken from (app/pyproject.toml allows only their series)."""
    assert metadata.version("dkimpy") == "1.1.8"
    assert metadata.version("pyspf") == "2.0.14"


@pytest.mark.parametrize("dotted", sorted(PINNED))
def test_library_method_we_override_or_rely_on_is_unchanged(dotted: str) -> None:
    """A new dkimpy/pyspf that changes one of these: compare it with mailauth.dkimsigner / mailauth.spf,
    carry the change over if it matters, then update the hash here."""
    assert _source_hash(dotted) == PINNED[dotted], f"{dotted} changed in the installed library"


def test_overrides_keep_the_library_signatures() -> None:
    """The hooks are called by the library with the parameters it passes today."""
    for ours, theirs in [
        (dkimsigner.Dkim.gen_header, dkim.DomainSigner.gen_header),
        (dkimsigner.Dkim.verify_sig_process, dkim.DomainSigner.verify_sig_process),
        (dkimsigner.Arc.sorted_arc_headers, dkim.ARC.sorted_arc_headers),
        (spfcheck._Query.dns, spf.query.dns),
    ]:
        assert list(inspect.signature(ours).parameters) == list(inspect.signature(theirs).parameters)


def _keys() -> dict[bytes, tuple[bytes, bytes]]:
    """algorithm -> (private key as dkimpy takes it, DNS TXT record)."""
    r = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_pem = r.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    rsa_public = r.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    e = ed25519.Ed25519PrivateKey.generate()
    seed = e.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    e_public = e.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {
        b"rsa-sha256": (rsa_pem, b"v=DKIM1; k=rsa; p=" + base64.b64encode(rsa_public)),
        b"ed25519-sha256": (base64.b64encode(seed), b"v=DKIM1; k=ed25519; p=" + base64.b64encode(e_public)),
    }


MESSAGE = (
    b"From: Alice <alice@sender.test>\r\nTo:  bob@example.test\r\nSubject: \t pins  \r\n"
    b"Date: Tue, 24 Nov 2026 10:00:00 +0000\r\n\r\nTwo  spaces,\ta tab \r\n\r\n\r\n"
)


def test_signatures_are_dkimpys_own_bytes_rfc6376_3_5(monkeypatch) -> None:
    """RFC 6376 §3.5 / RFC 8463: our Dkim.sign makes dkimpy's DKIM.sign's field, byte for byte, for
    both algorithms and both canonicalizations (the clock stopped so t= agrees)."""
    monkeypatch.setattr(time, "time", lambda: 1_790_000_000.0)
    include = [b"from", b"to", b"subject", b"date"]
    for algorithm, (key, _record) in _keys().items():
        for canon in [(b"relaxed", b"relaxed"), (b"simple", b"simple"), (b"relaxed", b"simple")]:
            ours = dkimsigner.sign(
                MESSAGE,
                b"s",
                b"sender.test",
                key,
                include_headers=include,
                signature_algorithm=algorithm,
                canonicalize=canon,
            )
            theirs = dkim.sign(
                MESSAGE,
                b"s",
                b"sender.test",
                key,
                include_headers=include,
                signature_algorithm=algorithm,
                canonicalize=canon,
            )
            assert ours == theirs, (algorithm, canon)


def test_verdicts_are_dkimpys_own_rfc6376_6_1() -> None:
    """RFC 6376 §6.1: on signatures where the RFC and dkimpy agree, our verifier says what dkimpy says."""
    keys = _keys()
    records = {b"s" + a[:3] + b"._domainkey.sender.test.": r for a, (_k, r) in keys.items()}

    def dns(name: bytes, timeout: int = 5) -> bytes:
        return records.get(name, b"")

    signed = MESSAGE
    for algorithm, (key, _record) in keys.items():
        signed = dkim.sign(signed, b"s" + algorithm[:3], b"sender.test", key, signature_algorithm=algorithm) + signed
    for message in [signed, signed.replace(b"Subject: \t pins", b"Subject: pins"), signed.replace(b"Alice", b"Eve")]:
        for idx in range(2):
            assert dkimsigner.Dkim(message).verify(idx=idx, dnsfunc=dns) == dkim.DKIM(message).verify(
                idx=idx, dnsfunc=dns
            )


AFTER_USE = """
import dkim, dkim.canonicalization, dkim.crypto, spf
stock = (dkim.canonicalization.Relaxed.canonicalize_headers, dkim.canonicalization.compress_whitespace,
         dkim.canonicalization.CanonicalizationPolicy.from_c_value.__func__, dkim.RSASSA_PKCS1_v1_5_sign,
         dkim.RSASSA_PKCS1_v1_5_verify, dkim.RelaxedCanonicalization.canonicalize_headers, spf.DNSLookup,
         spf.query.dns, dkim.DKIM.verify, dkim.DomainSigner.gen_header)
from sealmail.mailauth import checks, dkimsigner, workers
from sealmail.mailauth.dnsview import MemoryDns
from sealmail.smtp import dkimsign, forwarding
key = {key!r}
message = b"From: a@sender.test\\r\\nSubject: x\\r\\n\\r\\nbody\\r\\n"
signed = dkimsigner.sign(message, b"s", b"sender.test", key, include_headers=[b"from"]) + message
dns = MemoryDns({{("s._domainkey.sender.test", "TXT"): [[{record!r}]],
                 ("sender.test", "TXT"): [[b"v=spf1 -all"]]}})
results = checks.authenticate(dns, ip="192.0.2.1", helo="h.test", mail_from="a@sender.test", message=signed)
assert [r.result for r in results.dkim] == ["pass"] and results.spf.result == "fail", results
after = (dkim.canonicalization.Relaxed.canonicalize_headers, dkim.canonicalization.compress_whitespace,
         dkim.canonicalization.CanonicalizationPolicy.from_c_value.__func__, dkim.RSASSA_PKCS1_v1_5_sign,
         dkim.RSASSA_PKCS1_v1_5_verify, dkim.RelaxedCanonicalization.canonicalize_headers, spf.DNSLookup,
         spf.query.dns, dkim.DKIM.verify, dkim.DomainSigner.gen_header)
assert after == stock, [a for a, b in zip(after, stock) if a is not b]
assert dkim.RSASSA_PKCS1_v1_5_sign is dkim.crypto.RSASSA_PKCS1_v1_5_sign
assert {{f.__module__ for f in after}} == {{"dkim", "dkim.canonicalization", "dkim.crypto", "spf"}}, after
print("stock")
"""


def test_dkimpy_and_pyspf_stay_as_shipped_after_sealmail_signs_and_verifies() -> None:
    """In a fresh interpreter: import sealmail's mailauth and SMTP signing, sign, verify, check SPF;
    dkimpy's canonicalization and RSA and pyspf's DNS lookup are still the libraries' own."""
    key, record = _keys()[b"rsa-sha256"]
    script = AFTER_USE.format(key=key, record=record)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.strip() == b"stock"


def test_spf_asks_the_view_not_the_library_lookup_rfc7208_4_6_4(monkeypatch) -> None:
    """Our query answers from the DnsView and keeps pyspf's void-lookup limit (RFC 7208 §4.6.4: more
    than two lookups with no answer is a permerror); pyspf's own lookup is never called."""

    def library_lookup(*args, **kwargs):
        raise AssertionError("pyspf's module-level DNS lookup ran")

    monkeypatch.setattr(spf, "DNSLookup", library_lookup)
    zone = {("v.test", "TXT"): [[b"v=spf1 a:n1.v.test a:n2.v.test a:n3.v.test -all"]]}
    assert spfcheck.check(MemoryDns(zone), "192.0.2.1", "x@v.test", "h.test").result == "permerror"
    zone[("v.test", "TXT")] = [[b"v=spf1 a:n1.v.test a:n2.v.test ip4:192.0.2.1 -all"]]
    assert spfcheck.check(MemoryDns(zone), "192.0.2.1", "x@v.test", "h.test").result == "pass"
