"""An independent DKIM/ARC verifier for the tests: a fresh, unpatched dkimpy in its own interpreter.

Sealmail signs and verifies with subclasses of dkimpy's classes (``mailauth.dkimsigner``: OpenSSL
RSA, RFC-exact relaxed canonicalization); this verifier is dkimpy alone. This script runs as ``python -I -S tests/dkimpy_verify.py SITE_PACKAGES ...``:
no site hooks run (so no editable-install finder: sealmail cannot even be imported), only the
given site-packages directory is added to ``sys.path``, and the script refuses to verify if
sealmail is importable or dkimpy's primitives are not dkimpy's own.

Reads one message on stdin; keys come from a DNS server (``--dns HOST:PORT``, the test's
dnsmasq) or a JSON file mapping names to TXT values (``--keys FILE``). Prints, like
``tests/dkimverify.pl``, one line per DKIM signature and, with ``--arc``, one for the ARC chain:
    dkim <a=> <d=> <s=> pass|fail <detail>
    arc <cv> <detail>
"""

import importlib.util
import json
import sys

site_packages, *args = sys.argv[1:]
sys.path.append(site_packages)

if importlib.util.find_spec("sealmail") is not None:
    sys.exit("sealmail is importable here: this would not be an independent verifier")

import dkim  # noqa: E402
import dkim.canonicalization  # noqa: E402
import dkim.crypto  # noqa: E402

assert "sealmail" not in sys.modules
assert dkim.RSASSA_PKCS1_v1_5_sign is dkim.crypto.RSASSA_PKCS1_v1_5_sign
assert dkim.RSASSA_PKCS1_v1_5_verify is dkim.crypto.RSASSA_PKCS1_v1_5_verify
assert dkim.canonicalization.Relaxed.canonicalize_headers.__module__ == "dkim.canonicalization"
assert dkim.canonicalization.compress_whitespace.__module__ == "dkim.canonicalization"


def _dns_lookup(server):
    import dns.resolver

    host, _, port = server.rpartition(":")
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [host]
    resolver.port = int(port)

    def lookup(name, timeout=5):
        try:
            answer = resolver.resolve(name.decode(), "TXT", lifetime=timeout)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return None
        return b"".join(answer[0].strings)

    return lookup


def _file_lookup(path):
    with open(path) as f:
        records = {name.rstrip(".").lower(): value.encode() for name, value in json.load(f).items()}

    def lookup(name, timeout=5):
        return records.get(name.decode().rstrip(".").lower())

    return lookup


option, source, *flags = args
lookup = _dns_lookup(source) if option == "--dns" else _file_lookup(source)
message = sys.stdin.buffer.read()

verifier = dkim.DKIM(message)
count = sum(1 for name, _ in verifier.headers if name.lower() == b"dkim-signature")
for index in range(count):
    one = dkim.DKIM(message)
    try:
        ok = one.verify(idx=index, dnsfunc=lookup)
        detail = "-"
    except dkim.DKIMException as exc:
        ok, detail = False, str(exc).replace("\n", " ") or type(exc).__name__
    tags = getattr(one, "signature_fields", None) or {}
    print(
        "dkim",
        tags.get(b"a", b"?").decode(),
        tags.get(b"d", b"?").decode(),
        tags.get(b"s", b"?").decode(),
        "pass" if ok else "fail",
        detail,
    )

if "--arc" in flags:
    cv, _results, comment = dkim.arc_verify(message, dnsfunc=lookup)
    print("arc", cv.decode(), (comment or "-").replace("\n", " "))
