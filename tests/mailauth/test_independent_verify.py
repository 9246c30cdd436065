"""Our DKIM and ARC signatures checked by code we do not patch, and our code checked by the RFC.

Our signer and verifier are dkimpy's classes with our RSA and relaxed canonicalization
(``mailauth.dkimsigner``); dkimpy itself is left as shipped, and ``cleandkim`` runs dkimpy as shipped in a clean interpreter (``python -I -S``, sealmail not
importable) for an independent verdict. The RFC 8463 Appendix A example (Ed25519 and RSA
signatures over one message) pins our signer and verifier to published bytes.
"""

from __future__ import annotations

import base64
import subprocess
import sys
import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from sealmail.mailauth import dkimsigner
from sealmail.mailauth.checks import check_dkim
from sealmail.mailauth.dnsview import MemoryDns
from sealmail.services.dkim import domain_keys, ensure_keys
from sealmail.services.dnsrecords import records_for
from sealmail.smtp import dkimsign
from sealmail.smtp.forwarding import arc_seal

import cleandkim

# Header whitespace of every kind relaxed canonicalization folds (RFC 6376 §3.4.2), body whitespace (§3.4.4).
MESSAGE = (
    b"From:   Alice \t <alice@a.test>  \r\nTo: bob@b.test\r\nSubject: Signed\t\tand   spaced \r\n"
    b"  folded\r\n\tover lines\r\nDate: Mon, 2 Nov 2026 10:00:00 +0000\r\nMessage-ID: <d1@a.test>\r\n\r\n"
    b"The  body\t has \t runs.  \r\nTrailing tab\t\r\n\r\n\r\n"
)


@pytest.fixture
def signer(settings):
    """a.test with its RSA-2048 and Ed25519 keys; the public keys as TXT records."""
    ensure_keys(settings, "a.test")
    keys = {r.name: r.value for r in records_for(settings, "a.test") if r.type == "TXT" and "_domainkey" in r.name}
    return settings, keys


def test_the_clean_interpreter_cannot_import_sealmail() -> None:
    """The independent verifier's interpreter sees dkimpy but not sealmail (no site hooks, no editable finder)."""
    probe = (
        "import sys, importlib.util; sys.path.append(sys.argv[1]);"
        "print(importlib.util.find_spec('sealmail') is None, importlib.util.find_spec('dkim') is not None)"
    )
    clean = subprocess.run(
        [sys.executable, "-I", "-S", "-c", probe, cleandkim.SITE_PACKAGES], capture_output=True, check=True
    )
    assert clean.stdout.split() == [b"True", b"True"]
    usual = subprocess.run([sys.executable, "-I", "-c", probe, "-"], capture_output=True, check=True)
    assert usual.stdout.split()[0] == b"False"  # without -S the editable install would be found


def test_outbound_rsa_and_ed25519_pass_an_unpatched_dkimpy_rfc6376_3_4_rfc8463_3(signer) -> None:
    """RFC 6376 §3.4 relaxed/relaxed, rsa-sha256 (§3.3.1) and ed25519-sha256 (RFC 8463 §3): dkimpy as
    shipped, in its own interpreter, verifies what ``smtp.dkimsign`` signs — and fails a changed copy."""
    settings, keys = signer
    signed = dkimsign.sign(settings, "a.test", MESSAGE)
    lines = cleandkim.verify(signed, keys=keys)
    assert cleandkim.verdicts(lines) == ["ed25519-sha256 pass", "rsa-sha256 pass"], lines
    # Whitespace-only changes still pass under relaxed rules; a changed word does not.
    respaced = signed.replace(b"Signed\t\tand", b"Signed and").replace(b"runs.  \r\n", b"runs.\r\n")
    assert cleandkim.verdicts(cleandkim.verify(respaced, keys=keys)) == ["ed25519-sha256 pass", "rsa-sha256 pass"]
    changed = signed.replace(b"Subject: Signed", b"Subject: Signet")
    assert cleandkim.verdicts(cleandkim.verify(changed, keys=keys)) == ["ed25519-sha256 fail", "rsa-sha256 fail"]


def test_arc_set_from_the_forwarding_path_passes_an_unpatched_dkimpy_rfc8617_5_2(signer) -> None:
    """RFC 8617 §5.2: the ARC set ``smtp.forwarding.arc_seal`` adds validates (cv=pass) at dkimpy as
    shipped; a changed ARC-Seal or a changed body makes the chain fail."""
    settings, keys = signer
    received = b"Authentication-Results: " + settings.auth_id.encode() + b"; spf=pass smtp.mailfrom=a.test\r\n"
    sealed = arc_seal(settings, "a.test", received + MESSAGE)
    assert sealed.startswith(b"ARC-Seal: i=1;")
    assert cleandkim.verdicts(cleandkim.verify(sealed, keys=keys, arc=True)) == ["arc pass"]
    seal_end = sealed.index(b"\r\nARC-")
    head = sealed[:seal_end]
    b_at = head.rindex(b"b=") + 2
    assert head[b_at : b_at + 1].isalnum()  # a base64 character of the seal's signature
    flipped = b"B" if head[b_at : b_at + 1] == b"A" else b"A"
    corrupted = sealed[:b_at] + flipped + sealed[b_at + 1 :]
    assert corrupted != sealed
    assert cleandkim.verdicts(cleandkim.verify(corrupted, keys=keys, arc=True)) == ["arc fail"]
    body_changed = sealed.replace(b"The  body", b"A  body")
    assert cleandkim.verdicts(cleandkim.verify(body_changed, keys=keys, arc=True)) == ["arc fail"]


# ---- RFC 8463 Appendix A ---------------------------------------------------------------------------

RFC8463_ED25519_SEED = "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A="  # A.1 (RFC 8032 §7.1 TEST 1)
RFC8463_KEYS = {  # A.2
    "brisbane._domainkey.football.example.com": "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
    "test._domainkey.football.example.com": (
        "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWR"
        "iGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutAC"
        "DfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3"
        "Ip3G+2kryOTIKT+l/K4w3QIDAQAB"
    ),
}
RFC8463_ED25519_B = "/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11BusFa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw=="
RFC8463_SIGNATURES = (  # A.3, as CRLF lines
    b"DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;\r\n"
    b" d=football.example.com; i=@football.example.com;\r\n"
    b" q=dns/txt; s=brisbane; t=1528637909; h=from : to :\r\n"
    b" subject : date : message-id : from : subject : date;\r\n"
    b" bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n"
    b" b=/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11Bus\r\n"
    b" Fa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==\r\n"
    b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;\r\n"
    b" d=football.example.com; i=@football.example.com;\r\n"
    b" q=dns/txt; s=test; t=1528637909; h=from : to : subject :\r\n"
    b" date : message-id : from : subject : date;\r\n"
    b" bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n"
    b" b=F45dVWDfMbQDGHJFlXUNB2HKfbCeLRyhDXgFpEL8GwpsRe0IeIixNTe3\r\n"
    b" DhCVlUrSjV4BwcVcOF6+FF3Zo9Rpo1tFOeS9mPYQTnGdaSGsgeefOsk2Jz\r\n"
    b" dA+L10TeYt9BgDfQNZtKdN1WO//KgIqXP7OdEFE4LjFYNcUxZQ4FADY+8=\r\n"
)
RFC8463_MESSAGE = (  # A.3, unsigned
    b"From: Joe SixPack <joe@football.example.com>\r\n"
    b"To: Suzie Q <suzie@shopping.example.net>\r\n"
    b"Subject: Is dinner ready?\r\n"
    b"Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r\n"
    b"Message-ID: <20030712040037.46341.5F8J@football.example.com>\r\n"
    b"\r\n"
    b"Hi.\r\n"
    b"\r\n"
    b"We lost the game.  Are you hungry yet?\r\n"
    b"\r\n"
    b"Joe.\r\n"
)
RFC8463_H = [b"from", b"to", b"subject", b"date", b"message-id", b"from", b"subject", b"date"]


def _zone(records: dict[str, str]) -> dict:
    return {(name, "TXT"): [[value.encode()]] for name, value in records.items()}


def test_rfc8463_example_itself_verifies_at_an_unpatched_dkimpy() -> None:
    """The vector as copied here is the RFC's: both its signatures verify under dkimpy as shipped."""
    lines = cleandkim.verify(RFC8463_SIGNATURES + RFC8463_MESSAGE, keys=RFC8463_KEYS)
    assert cleandkim.verdicts(lines) == ["ed25519-sha256 pass", "rsa-sha256 pass"], lines
    public = ed25519.Ed25519PrivateKey.from_private_bytes(base64.b64decode(RFC8463_ED25519_SEED)).public_key()
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert RFC8463_KEYS["brisbane._domainkey.football.example.com"].endswith(base64.b64encode(raw).decode())


def test_our_verifier_accepts_the_rfc8463_appendix_a_message() -> None:
    """RFC 8463 Appendix A.3: our verifier (``check_dkim``, OpenSSL RSA, our relaxed rules) passes
    both the Ed25519 and the RSA signature with the A.2 keys, and fails them on a changed body."""
    zone = _zone(RFC8463_KEYS)
    results = check_dkim(MemoryDns(zone), RFC8463_SIGNATURES + RFC8463_MESSAGE)
    assert [(r.result, r.algorithm, r.selector) for r in results] == [
        ("pass", "ed25519-sha256", "brisbane"),
        ("pass", "rsa-sha256", "test"),
    ]
    changed = RFC8463_SIGNATURES + RFC8463_MESSAGE.replace(b"hungry", b"thirsty")
    assert {r.result for r in check_dkim(MemoryDns(zone), changed)} == {"fail"}


def test_our_signer_makes_the_rfc8463_ed25519_signature_byte_for_byte(settings, monkeypatch) -> None:
    """RFC 8463 §3 / Appendix A: Ed25519 (RFC 8032) is deterministic, so our signer — dkimpy's DKIM
    class with our canonicalization (``mailauth.dkimsigner``), fed the domain key as ``smtp.dkimsign``
    feeds it — given A.1's key and
    A.3's d=, s=, i=, t= and h= must produce A.3's b= exactly, and publish A.2's key record."""
    settings = settings.model_copy(update={"dkim_selector_ed25519": "brisbane"})
    (key,) = [k for k in domain_keys(settings, "football.example.com") if k.algorithm == "ed25519"]
    private = ed25519.Ed25519PrivateKey.from_private_bytes(base64.b64decode(RFC8463_ED25519_SEED))
    key.path.parent.mkdir(parents=True)
    key.path.write_bytes(  # a published example key, not a secret
        private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    assert key.dns_name() == "brisbane._domainkey.football.example.com"
    assert key.dns_value() == RFC8463_KEYS[key.dns_name()]
    monkeypatch.setattr(time, "time", lambda: 1528637909.0)
    header = dkimsigner.sign(  # i= is @ and d=, as in A.3
        RFC8463_MESSAGE,
        key.selector.encode(),
        key.domain.encode(),
        dkimsign._private_key(key),
        include_headers=RFC8463_H,
        signature_algorithm=b"ed25519-sha256",
        canonicalize=(b"relaxed", b"relaxed"),
    )
    monkeypatch.undo()
    tags = {
        name.strip(): value.strip()
        for name, _, value in (t.partition(b"=") for t in b"".join(header.split()).split(b":", 1)[1].split(b";"))
    }
    assert tags[b"b"].decode() == RFC8463_ED25519_B
    assert tags[b"bh"] == b"2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8="
    assert tags[b"h"] == b":".join(RFC8463_H)
