#!/usr/bin/env python3
"""Find a mailbox's IMAP and SMTP servers from its address alone, the way Thunderbird does.

Thunderbird's lookup order (https://wiki.mozilla.org/Thunderbird:Autoconfiguration), without the
steps that need its central database (ISPDB):
  1. https://autoconfig.<domain>/mail/config-v1.1.xml?emailaddress=<address>
  2. https://<domain>/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=<address>
  3. DNS SRV records (RFC 6186, with RFC 8314's implicit-TLS services): _imaps._tcp.<domain>
     and _submissions._tcp.<domain>; a target of "." means the service is not offered.
Calendars and contacts the way RFC 6764 §6 tells a client: SRV _caldavs._tcp / _carddavs._tcp
for the server, TXT path= for the context path (else /.well-known/caldav|carddav on that server).
Certificates are checked against the system's trust store. An IDN domain is looked up in its
A-label form. Prints JSON: {"found_by", "url", "imap": {...}, "smtp": {...}, "caldav", "carddav"}.

Usage: discover.py ADDRESS [--steps autoconfig,well-known,srv]
"""

from __future__ import annotations

import argparse
import json
import ssl
import sys
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

STEPS = ("autoconfig", "well-known", "srv")


def a_label(domain: str) -> str:
    return domain.encode("idna").decode("ascii")


def substitute(template: str, address: str) -> str:
    local, _, domain = address.rpartition("@")
    return (
        template.replace("%EMAILADDRESS%", address).replace("%EMAILLOCALPART%", local).replace("%EMAILDOMAIN%", domain)
    )


def server(element: ET.Element, address: str) -> dict:
    return {
        "hostname": element.findtext("hostname", "").strip(),
        "port": int(element.findtext("port", "0")),
        "socket_type": element.findtext("socketType", "").strip(),
        "username": substitute(element.findtext("username", "").strip(), address),
    }


def parse_config(text: bytes, address: str) -> dict | None:
    root = ET.fromstring(text)  # noqa: S314 (a test client; the server is ours, over verified HTTPS)
    provider = root.find("emailProvider")
    if provider is None:
        return None
    imap = [s for s in provider.findall("incomingServer") if s.get("type") == "imap"]
    smtp = [s for s in provider.findall("outgoingServer") if s.get("type") == "smtp"]
    if not imap or not smtp:
        return None
    # Prefer implicit TLS (socketType SSL), as Thunderbird does when several are offered.
    imap.sort(key=lambda s: s.findtext("socketType") != "SSL")
    smtp.sort(key=lambda s: s.findtext("socketType") != "SSL")
    return {"imap": server(imap[0], address), "smtp": server(smtp[0], address)}


def fetch(url: str) -> bytes | None:
    context = ssl.create_default_context()
    try:
        with urllib.request.urlopen(url, context=context, timeout=10) as response:  # noqa: S310 (https only)
            return response.read()
    except (urllib.error.URLError, OSError) as exc:
        print(f"discover: {url}: {exc}", file=sys.stderr)
        return None


def srv(name: str) -> tuple[str, int] | None:
    import dns.resolver

    try:
        answers = sorted(dns.resolver.resolve(name, "SRV"), key=lambda r: (r.priority, -r.weight))
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer) as exc:
        print(f"discover: {name}: {exc}", file=sys.stderr)
        return None
    best = answers[0]
    target = best.target.to_text(omit_final_dot=True)
    if target in ("", "."):
        return None  # RFC 6186 §4: the service is not provided
    return target, best.port


def dav_context(domain: str, service: str) -> str | None:
    """RFC 6764 §6: the context URL of CalDAV (caldavs) or CardDAV (carddavs) for ``domain``."""
    import dns.resolver

    found = srv(f"_{service}._tcp.{domain}")
    if found is None:
        return None
    host, port = found
    path = f"/.well-known/{service.removesuffix('s')}"
    try:
        for record in dns.resolver.resolve(f"_{service}._tcp.{domain}", "TXT"):
            text = b"".join(record.strings).decode()
            if text.startswith("path="):
                path = text.removeprefix("path=") or "/"
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        pass  # RFC 6764 §6: no TXT record, the well-known URI on the SRV target
    authority = host if port == 443 else f"{host}:{port}"
    return f"https://{authority}{path}"


def discover(address: str, steps: tuple[str, ...]) -> dict | None:
    found = _mail(address, steps)
    if found is not None:
        domain = a_label(address.rpartition("@")[2])
        found["caldav"] = dav_context(domain, "caldavs")
        found["carddav"] = dav_context(domain, "carddavs")
    return found


def _mail(address: str, steps: tuple[str, ...]) -> dict | None:
    domain = a_label(address.rpartition("@")[2])
    query = urllib.parse.urlencode({"emailaddress": address})
    urls = {
        "autoconfig": f"https://autoconfig.{domain}/mail/config-v1.1.xml?{query}",
        "well-known": f"https://{domain}/.well-known/autoconfig/mail/config-v1.1.xml?{query}",
    }
    for step in steps:
        if step in urls:
            body = fetch(urls[step])
            found = parse_config(body, address) if body else None
            if found:
                return {"found_by": step, "url": urls[step], **found}
        elif step == "srv":
            imap, smtp = srv(f"_imaps._tcp.{domain}"), srv(f"_submissions._tcp.{domain}")
            if imap and smtp:
                return {
                    "found_by": "srv",
                    "url": None,
                    "imap": {"hostname": imap[0], "port": imap[1], "socket_type": "SSL", "username": address},
                    "smtp": {"hostname": smtp[0], "port": smtp[1], "socket_type": "SSL", "username": address},
                }
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("address")
    parser.add_argument("--steps", default=",".join(STEPS))
    args = parser.parse_args()
    steps = tuple(s for s in args.steps.split(",") if s)
    unknown = set(steps) - set(STEPS)
    if unknown:
        parser.error(f"unknown steps: {', '.join(sorted(unknown))}")
    found = discover(args.address, steps)
    if found is None:
        print(f"discover: no configuration found for {args.address}", file=sys.stderr)
        return 1
    print(json.dumps(found, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
