"""dkimpy's DKIM and ARC classes, signing and verifying with our RSA and relaxed canonicalization.

dkimpy reaches its RSA primitives and canonicalization algorithms through module globals and
offers no parameter to pass others. Changing those globals would change dkimpy for every user in
the process, and an upgrade that renamed one would silently stop using ours. Instead ``Dkim`` and
``Arc`` override the few methods that call them, written again around dkimpy's own helpers
(``hash_headers``, ``fold``, ``HashThrough``, its key parsers):

* ``gen_header`` (every signature made, DKIM and ARC): header hash and RSA by ``dkimrsa``;
* ``verify_sig_process`` (every signature checked, DKIM and ARC): body and header hashes, RSA;
* ``Dkim.sign``: the body hash (dkimpy's regular expressions cost ~0.3 ms on 4 KB);
* ``Arc.sorted_arc_headers``: the ARC fields read with RFC 6376 §3.4.2 relaxed rules.

dkimpy's ``ARC.sign`` still hashes the body with its own (same bytes, slower) code: it is only
used for forwarded copies, and re-writing it is 140 lines. The library methods replaced here and
those whose calls into them we rely on are pinned in ``tests/mailauth/test_dkimpy_pins.py``: a
dkimpy release that changes one fails that test instead of changing our results.
"""

from __future__ import annotations

import base64
import re
import time
from typing import Any

import dkim
import dkim.crypto
import nacl.encoding
import nacl.exceptions
import nacl.signing

from sealmail.mailauth import dkimcanon, dkimrsa

_RSA = (b"rsa-sha256", b"rsa-sha1")
_WSP = re.compile(rb"\s+")

Header = tuple[bytes, bytes]


def _private_key(algorithm: bytes, key: bytes) -> Any:
    """The key as dkimpy's signers take it (RFC 8463 §3: an Ed25519 key is a base64 seed)."""
    if algorithm in _RSA:
        try:
            return dkim.crypto.parse_pem_private_key(key)
        except dkim.crypto.UnparsableKeyError as exc:
            raise dkim.KeyFormatError(str(exc)) from exc
    try:
        return nacl.signing.SigningKey(key, encoder=nacl.encoding.Base64Encoder)
    except nacl.exceptions.ValueError as exc:
        raise dkim.KeyFormatError("invalid ed25519 private key or format") from exc


class _Ours:
    """The two overrides DKIM and ARC share (dkimpy's ``DomainSigner`` methods of the same names)."""

    # Attributes dkimpy's DomainSigner sets; named here for the type checker.
    headers: list[Header]
    body: bytes
    signature_algorithm: bytes
    hasher: Any
    debug_content: bool
    linesep: bytes
    signed_headers: list[Header]
    tlsrpt: bool | str
    seqtlsrpt: bool
    ktag: bytes
    pk: Any
    keysize: int
    minkey: int

    def gen_header(
        self,
        fields: list[tuple[bytes, bytes]],
        include_headers: Any,
        canon_policy: Any,
        header_name: bytes,
        pk: Any,
        standardize: bool = False,
    ) -> bytes:
        """The signature field's value with b= computed (RFC 6376 §3.7; RFC 8617 §4.1.2, §4.1.3)."""
        policy = dkimcanon.policy(canon_policy.to_c_value())  # ARC.sign passes dkimpy's own
        if standardize:
            fields = sorted(
                [(k, v.lower().replace(b" ", b"")) for k, v in fields if k != b"bh"]
                + [(k, v.replace(b" ", b"")) for k, v in fields if k == b"bh"],
                key=lambda f: f[0],
            )
        value = b"; ".join(b"=".join(f) for f in fields)
        if not standardize:
            value = dkim.fold(value, namelen=len(header_name), linesep=b"\r\n")
        unsigned = (header_name, b" " + dkim.RE_BTAG.sub(b"\\1", value))
        h = dkim.HashThrough(self.hasher(), self.debug_content)
        headers = policy.canonicalize_headers(self.headers)
        self.signed_headers = dkim.hash_headers(h, policy, headers, include_headers, unsigned, dict(fields))
        if self.signature_algorithm in _RSA:
            try:
                signature = dkimrsa.sign(h, pk)
            except dkim.crypto.DigestTooLargeError as exc:
                raise dkim.ParameterError("digest too large for modulus") from exc
        else:
            signature = pk.sign(h.digest()).signature
        at = next(i for i, (k, _) in enumerate(fields) if k == b"b")
        fields[at] = (b"b", base64.b64encode(bytes(signature)))  # in place, as dkimpy: its callers read it
        value = b"; ".join(b"=".join(f) for f in fields) + self.linesep
        if not standardize:
            value = dkim.fold(value, namelen=len(header_name), linesep=self.linesep)
        return value

    def verify_sig_process(
        self, sig: dict[bytes, bytes], include_headers: list[bytes], sig_header: Header, dnsfunc: Any
    ) -> bool:
        """RFC 6376 §6.1.3: the body hash, then the header hash and signature, with the key loaded."""
        if self.tlsrpt == "strict" and not self.seqtlsrpt:
            raise dkim.ValidationError("Message is tlsrpt and Service Type is not tlsrpt")
        if not self.tlsrpt and self.seqtlsrpt:
            raise dkim.ValidationError("Message is not tlsrpt and Service Type is tlsrpt")
        try:
            policy = dkimcanon.policy(sig.get(b"c", b"simple/simple"))
        except dkim.InvalidCanonicalizationPolicyError as exc:
            raise dkim.MessageFormatError(f"invalid c= value: {exc.args[0]}") from exc
        hasher = dkim.crypto.HASH_ALGORITHMS[sig[b"a"]]
        if b"bh" in sig:
            body = policy.canonicalize_body(self.body)
            if b"l" in sig and not self.tlsrpt:
                body = body[: int(sig[b"l"])]
            bodyhash = hasher(body).digest()
            if bodyhash != base64.b64decode(_WSP.sub(b"", sig[b"bh"])):
                raise dkim.ValidationError(
                    f"body hash mismatch (got {base64.b64encode(bodyhash)!r}, expected {sig[b'bh']!r})"
                )
        if b"from" in include_headers:
            include_headers.append(b"from")  # as dkimpy: a second From is covered too (Debian bug 644046)
        h = dkim.HashThrough(hasher(), self.debug_content)
        headers = policy.canonicalize_headers(self.headers)
        self.signed_headers = dkim.hash_headers(h, policy, headers, include_headers, sig_header, sig)
        signature = base64.b64decode(_WSP.sub(b"", sig[b"b"]))
        if self.ktag == b"rsa":
            try:
                valid = dkimrsa.verify(h, signature, self.pk)
            except (TypeError, dkim.crypto.DigestTooLargeError) as exc:
                raise dkim.KeyFormatError(f"digest too large for modulus: {exc}") from exc
            if valid and self.keysize < self.minkey:
                raise dkim.KeyFormatError(f"public key too small: {self.keysize}")
            return valid
        if self.ktag == b"ed25519":
            try:
                self.pk.verify(h.digest(), signature)
            except nacl.exceptions.BadSignatureError:
                return False
            return True
        raise dkim.UnknownKeyTypeError(self.ktag)


class Dkim(_Ours, dkim.DKIM):  # type: ignore[misc]  # dkimpy has no type information: its classes are Any
    """``dkim.DKIM`` with our RSA and canonicalization."""

    def sign(  # the options sealmail uses, not all of dkimpy's
        self,
        selector: bytes,
        domain: bytes,
        privkey: bytes,
        *,
        include_headers: list[bytes],
        canonicalize: tuple[bytes, bytes] = (b"relaxed", b"relaxed"),
    ) -> bytes:
        """One DKIM-Signature field, name included (RFC 6376 §3.5, §5), as ``dkim.DKIM.sign`` makes it."""
        pk = _private_key(self.signature_algorithm, privkey)
        policy = dkimcanon.policy(b"/".join(canonicalize))
        include = tuple(h.lower() for h in include_headers)
        self.include_headers = include
        if b"from" not in include:
            raise dkim.ParameterError("The From header field MUST be signed")  # RFC 6376 §5.4
        for name in set(include).intersection(self.should_not_sign):
            raise dkim.ParameterError(f"The {name!r} header field SHOULD NOT be signed")
        self.hasher = dkim.crypto.HASH_ALGORITHMS[self.signature_algorithm]
        bodyhash = base64.b64encode(self.hasher(policy.canonicalize_body(self.body)).digest())
        fields = [
            (b"v", b"1"),
            (b"a", self.signature_algorithm),
            (b"c", policy.to_c_value()),
            (b"d", domain),
            (b"i", b"@" + domain),
            (b"q", b"dns/txt"),
            (b"s", selector),
            (b"t", str(int(time.time())).encode("ascii")),
            (b"h", b" : ".join(include)),
            (b"bh", bodyhash),
            (b"b", b"0" * 60),  # b= on a line of its own, so folding after signing moves nothing else
        ]
        value = self.gen_header(fields, include, policy, b"DKIM-Signature", pk)
        self.domain, self.selector, self.signature_fields = domain, selector, dict(fields)
        return b"DKIM-Signature: " + value


class Arc(_Ours, dkim.ARC):  # type: ignore[misc]  # dkimpy has no type information: its classes are Any
    """``dkim.ARC`` with our RSA and canonicalization."""

    def sorted_arc_headers(self) -> tuple[int, list[tuple[int, Header]]]:
        """The ARC fields, relaxed (RFC 8617 §4.1.3), with their instance; highest instance first."""
        arc = [h for h in self.headers if h[0].lower().rstrip(b" \t") in self.ARC_HEADERS]
        found = []
        for name, value in dkimcanon.relaxed_headers(arc):
            match = self.INSTANCE_RE.search(value)
            if match is not None:
                found.append((int(match.group(1)), (name, value)))
        if not found:
            return 0, []
        # Sorted then reversed, as dkimpy: fields with equal keys keep dkimpy's order.
        found = sorted(found, key=lambda a: [a[0], a[1][0].lower(), a[1][1].lower()])
        found.reverse()
        return found[0][0], found


def sign(
    message: bytes,
    selector: bytes,
    domain: bytes,
    privkey: bytes,
    *,
    include_headers: list[bytes],
    signature_algorithm: bytes = b"rsa-sha256",
    canonicalize: tuple[bytes, bytes] = (b"relaxed", b"relaxed"),
) -> bytes:
    """``dkim.sign`` with our classes: the DKIM-Signature field, CRLF-terminated."""
    signer = Dkim(message, signature_algorithm=signature_algorithm)
    out: bytes = signer.sign(selector, domain, privkey, include_headers=include_headers, canonicalize=canonicalize)
    return out


def arc_sign(
    message: bytes, selector: bytes, domain: bytes, privkey: bytes, srv_id: bytes, *, include_headers: list[bytes]
) -> list[bytes]:
    """``dkim.arc_sign`` with our classes: the ARC set's three fields (RFC 8617 §4.1), seal first."""
    out: list[bytes] = Arc(message).sign(selector, domain, privkey, srv_id, include_headers=include_headers)
    return out
