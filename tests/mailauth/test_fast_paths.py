"""The MX's fast paths give the same answers as the slow ones.

* RSA by OpenSSL (``mailauth.dkimrsa``): RSASSA-PKCS1-v1_5 (RFC 8017 §8.2) is deterministic, so
  the signature must be byte for byte dkimpy's own, and verification must agree on good and bad
  signatures (RFC 6376 §3.3.1: rsa-sha256).
* Sender checks in worker processes (``mailauth.workers``): the same results as on a thread; a
  worker that dies costs no message its verdict (the check runs again here) and is replaced.
"""

from __future__ import annotations

import asyncio
import base64
import os
import signal

import dkim
import dkim.crypto
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sealmail.mailauth import dkimrsa, dkimsigner
from sealmail.mailauth.workers import AuthWorkers, check_message

from dnsserver import DnsServer

MESSAGE = (
    b"From: Alice <alice@sender.test>\r\nTo: bob@example.test\r\nSubject: fast paths\r\n"
    b"Date: Tue, 24 Nov 2026 10:00:00 +0000\r\nMessage-ID: <fast@sender.test>\r\n\r\nHello Bob.\r\n"
)


def _rsa_pem(bits: int = 2048) -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )


@pytest.mark.parametrize("bits", [1024, 2048, 3072])
def test_openssl_signature_is_dkimpys_own(bits: int) -> None:
    pem = _rsa_pem(bits)
    parsed = dkim.crypto.parse_pem_private_key(pem)
    for text in (b"one", b"two", MESSAGE):
        digest = dkim.crypto.HASH_ALGORITHMS[b"rsa-sha256"](text)
        fast = dkimrsa.sign(digest, parsed)
        pure = dkimrsa._pure_sign(dkim.crypto.HASH_ALGORITHMS[b"rsa-sha256"](text), parsed)
        assert fast == pure


def test_openssl_verify_agrees_on_good_bad_and_short_signatures() -> None:
    pem = _rsa_pem()
    private = dkim.crypto.parse_pem_private_key(pem)
    public = {"modulus": private["modulus"], "publicExponent": private["publicExponent"]}

    def digest():
        return dkim.crypto.HASH_ALGORITHMS[b"rsa-sha256"](MESSAGE)

    good = dkimrsa._pure_sign(digest(), private)
    assert dkimrsa.verify(digest(), good, public) is True
    bad = bytes([good[0] ^ 1]) + good[1:]
    assert dkimrsa.verify(digest(), bad, public) is dkimrsa._pure_verify(digest(), bad, public) is False
    assert dkimrsa.verify(digest(), b"\x00" + good, public) is dkimrsa._pure_verify(digest(), b"\x00" + good, public)
    if good[0] == 0:  # a signer that dropped the leading zero octet: dkimpy reads an integer, so it verifies
        assert dkimrsa.verify(digest(), good[1:], public) is True


def _public_txt(pem: bytes) -> bytes:
    record = dkim.crypto.parse_pem_private_key(pem)
    public_der = (
        rsa.RSAPublicNumbers(record["publicExponent"], record["modulus"])
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return b"v=DKIM1; k=rsa; p=" + base64.b64encode(public_der)


def test_dkim_sign_and_verify_go_through_openssl(monkeypatch) -> None:
    """Our DKIM and ARC classes (``mailauth.dkimsigner``) sign and verify with OpenSSL alone: dkimpy's
    own RSA arithmetic is made to raise meanwhile, and the result still verifies with dkimpy as shipped."""
    pem = _rsa_pem()
    txt = _public_txt(pem)

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"s1._domainkey.sender.test."
        return txt

    def pure_arithmetic(*args):
        raise AssertionError("dkimpy's own RSA arithmetic ran: the OpenSSL path was bypassed")

    authres = b"Authentication-Results: mx.test; spf=pass smtp.mailfrom=sender.test\r\n"
    with monkeypatch.context() as m:
        m.setattr(dkim.crypto, "rsa_decrypt", pure_arithmetic)
        m.setattr(dkim.crypto, "rsa_encrypt", pure_arithmetic)
        signed = dkimsigner.sign(MESSAGE, b"s1", b"sender.test", pem, include_headers=[b"from", b"to", b"subject"])
        signed += MESSAGE
        assert dkimsigner.Dkim(signed).verify(dnsfunc=dnsfunc)
        sealed = authres + MESSAGE
        sealed = (
            b"".join(dkimsigner.arc_sign(sealed, b"s1", b"sender.test", pem, b"mx.test", include_headers=[b"from"]))
            + sealed
        )
        assert dkimsigner.Arc(sealed).verify(dnsfunc=dnsfunc)[0] == b"pass"
    # and dkimpy's own arithmetic (untouched by sealmail) accepts what OpenSSL signed
    assert dkim.RSASSA_PKCS1_v1_5_verify is dkimrsa._pure_verify
    assert dkim.DKIM(signed).verify(dnsfunc=dnsfunc)
    assert not dkim.verify(signed.replace(b"Hello Bob", b"Hello Eve"), dnsfunc=dnsfunc)
    assert dkim.ARC(sealed).verify(dnsfunc=dnsfunc)[0] == b"pass"


def test_signature_not_below_the_modulus_is_invalid_rfc8017_5_2_2() -> None:
    """RFC 8017 §5.2.2 step 1: s >= n is "signature representative out of range". dkimpy's integer
    arithmetic reduces s + n to s and accepts it; the OpenSSL path refuses it, with no fallback."""
    pem = _rsa_pem()
    private = dkim.crypto.parse_pem_private_key(pem)
    public = {"modulus": private["modulus"], "publicExponent": private["publicExponent"]}

    def digest():
        return dkim.crypto.HASH_ALGORITHMS[b"rsa-sha256"](MESSAGE)

    good = dkimrsa.sign(digest(), private)
    shifted = (int.from_bytes(good, "big") + private["modulus"]).to_bytes(len(good) + 1, "big")
    assert dkimrsa._pure_verify(digest(), shifted, public) is True  # what the fast path must not copy
    assert dkimrsa.verify(digest(), shifted, public) is False


def test_unusable_keys_get_dkimpys_errors_not_a_silent_fallback_rfc8017_3_1() -> None:
    """Keys OpenSSL refuses are refused in the open: a public exponent outside 3..n-1 (RFC 8017 §3.1)
    or private numbers that do not fit are key errors, and a modulus too small for the digest is
    dkimpy's DigestTooLargeError (RFC 8017 §9.2 step 3: "intended encoded message length too short")."""
    pem = _rsa_pem(1024)
    private = dkim.crypto.parse_pem_private_key(pem)
    digest = dkim.crypto.HASH_ALGORITHMS[b"rsa-sha256"](MESSAGE)
    signature = dkimrsa.sign(digest.copy(), private)
    with pytest.raises(dkim.KeyFormatError):
        dkimrsa.verify(digest.copy(), signature, {"modulus": private["modulus"], "publicExponent": 1})
    other = dkim.crypto.parse_pem_private_key(_rsa_pem(1024))  # not signed with yet: no OpenSSL key kept
    broken = dict(other, prime1=other["prime1"] + 2)
    with pytest.raises(dkim.KeyFormatError):
        dkimrsa.sign(digest.copy(), broken)
    tiny = (1 << 479) | 1  # 480 bits: 60 octets, the SHA-256 DigestInfo needs 62
    with pytest.raises(dkim.crypto.DigestTooLargeError):
        dkimrsa.verify(digest.copy(), b"\1" * 60, {"modulus": tiny, "publicExponent": 65537})
    with pytest.raises(dkim.crypto.DigestTooLargeError):
        dkimrsa.sign(digest.copy(), dict(private, modulus=tiny))
    with pytest.raises(dkim.crypto.DigestTooLargeError):  # dkimpy's own code says the same
        dkimrsa._pure_verify(digest.copy(), b"\1" * 60, {"modulus": tiny, "publicExponent": 65537})


@pytest.fixture
def dns(tmp_path):
    server = DnsServer(tmp_path)
    server.txt("sender.test", "v=spf1 ip4:192.0.2.0/24 -all")
    server.txt("_dmarc.sender.test", "v=DMARC1; p=reject")
    server.start()
    yield server
    server.stop()


def _servers(dns) -> list[tuple[str, int]]:
    host, port = dns.address.split(":")
    return [(host, int(port))]


async def test_worker_processes_give_the_thread_answer(dns) -> None:
    from sealmail.mailauth.dnsview import ResolverDns

    args = ("192.0.2.7", "client.sender.test", "alice@sender.test", MESSAGE, "mx.example.test")
    expected = check_message(ResolverDns(_servers(dns), 5.0), *args)
    workers = AuthWorkers(_servers(dns), 5.0, 2)
    await workers.start()
    try:
        got = await asyncio.gather(*(workers.check(*args) for _ in range(6)))
    finally:
        await workers.close()
    for results, stripped in got:
        assert results.header("mx.example.test") == expected[0].header("mx.example.test")
        assert results.spf.result == "pass"
        assert results.dmarc.result == "pass"  # RFC 7489 §3.1.2: an aligned SPF pass is enough
        assert stripped == expected[1]


class _HoldingDns:
    """A DNS server on loopback that holds questions until ``together`` are waiting (or 3 s pass),
    then answers them all (no records): how many were waiting at once tells how many checks ran at once.
    """

    def __init__(self, together: int) -> None:
        import socket
        import threading

        self.together = together
        self.most_waiting = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def servers(self) -> list[tuple[str, int]]:
        return [self.sock.getsockname()]

    def _serve(self) -> None:
        import time

        import dns.message
        import dns.rcode

        waiting: list[tuple[bytes, tuple[str, int]]] = []
        first = 0.0
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
                waiting.append((data, peer))
                first = first or time.monotonic()
                self.most_waiting = max(self.most_waiting, len(waiting))
            except TimeoutError:
                pass
            if waiting and (len(waiting) >= self.together or time.monotonic() - first > 3):
                for data, peer in waiting:
                    reply = dns.message.make_response(dns.message.from_wire(data))
                    reply.set_rcode(dns.rcode.NXDOMAIN)
                    self.sock.sendto(reply.to_wire(), peer)
                waiting, first = [], 0.0

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


async def test_one_worker_checks_several_messages_at_once() -> None:
    """A check waiting for DNS (tens of ms from a real resolver) must not hold up the next message."""
    holding = _HoldingDns(together=6)
    workers = AuthWorkers(holding.servers, 10.0, 1)
    await workers.start()
    try:
        senders = [f"s{n}.example" for n in range(6)]
        got = await asyncio.gather(
            *(workers.check("192.0.2.1", "c.example", f"a@{d}", MESSAGE, "mx.example.test") for d in senders)
        )
    finally:
        await workers.close()
        holding.stop()
    assert holding.most_waiting >= 6  # six checks' SPF questions were out together, in one process
    assert all(results.spf.result == "none" for results, _ in got)


async def test_a_dead_worker_costs_no_verdict_and_is_replaced(dns) -> None:
    args = ("198.51.100.1", "client.sender.test", "alice@sender.test", MESSAGE, "mx.example.test")
    workers = AuthWorkers(_servers(dns), 5.0, 1)
    await workers.start()
    try:
        (first,) = workers._workers
        os.kill(first.proc.pid, signal.SIGKILL)
        await first.proc.wait()
        results, _ = await workers.check(*args)
        assert results.spf.result == "fail"  # answered on a thread meanwhile
        assert len(workers._workers) == 1
        assert workers._workers[0] is not first
        results, _ = await workers.check(*args)  # and by the new worker
        assert results.spf.result == "fail"
    finally:
        await workers.close()


# ---- relaxed canonicalization (mailauth.dkimcanon) ------------------------------------------------


def _random_texts(count: int = 3000) -> list[bytes]:
    """Bodies and header values made of the characters the WSP rules care about, in every mix."""
    import random

    rng = random.Random(6376)
    alphabet = [b" ", b"  ", b"\t", b" \t ", b"a", b"word", b"\r\n", b"\r", b"\n", b"\xc3\xa9", b"."]
    texts = [b"", b" ", b"\t", b"\r\n", b" \r\n", b"\t\r\n", b"a \r\n\r\n \r\n", b"x\t \ty\r\n"]
    for _ in range(count):
        texts.append(b"".join(rng.choices(alphabet, k=rng.randint(1, 60))))
    return texts


def test_relaxed_whitespace_rules_give_dkimpys_bytes_rfc6376_3_4_4() -> None:
    """RFC 6376 §3.4.4: trailing WSP removed, every WSP run one space — the same bytes as dkimpy's own."""
    from sealmail.mailauth import dkimcanon

    for text in _random_texts():
        assert dkimcanon.compress_whitespace(text) == dkimcanon.pure_compress_whitespace(text), text
        assert dkimcanon.strip_trailing_whitespace(text) == dkimcanon.pure_strip_trailing_whitespace(text), text


def test_relaxed_canonicalization_in_use_keeps_signatures_valid_rfc6376_3_4() -> None:
    """Our classes sign and verify relaxed/relaxed through our rules; a WSP-only change still verifies."""
    from sealmail.mailauth import dkimcanon

    policy = dkimcanon.policy(b"relaxed/relaxed")
    assert policy.body_algorithm.canonicalize_body is dkimcanon.relaxed_body
    body_texts = [t + b"\r\n" for t in _random_texts(300)]
    assert all(dkimcanon.relaxed_body(t) == dkim.canonicalization.Relaxed.canonicalize_body(t) for t in body_texts)
    pem = _rsa_pem()
    body = b"Two  spaces,\ta tab, and trailing space \r\n\r\n\r\n"
    message = MESSAGE.replace(b"Hello Bob.\r\n", body)
    signature = dkimsigner.sign(message, b"sel", b"sender.test", pem, include_headers=[b"from", b"subject"])
    public = (
        serialization.load_pem_private_key(pem, None)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)

    def dns(name: bytes, timeout: int = 5) -> bytes:
        return record if name == b"sel._domainkey.sender.test." else b""

    # Relaxed canonicalization ignores how much whitespace there is (RFC 6376 §3.4.4).
    respaced = signature + message.replace(b"Two  spaces", b"Two \t spaces").replace(b"space \r\n", b"space\r\n")
    assert dkimsigner.Dkim(signature + message).verify(dnsfunc=dns)
    assert dkimsigner.Dkim(respaced).verify(dnsfunc=dns)
    with pytest.raises(dkim.ValidationError, match="body hash mismatch"):
        dkimsigner.Dkim(signature + message.replace(b"Two", b"Too")).verify(dnsfunc=dns)
    assert dkim.verify(respaced, dnsfunc=dns)  # and dkimpy as shipped agrees
