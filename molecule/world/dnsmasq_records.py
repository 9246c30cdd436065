"""DNS records as JSON (the shape of /etc/sealmail/dns-records.json) to a dnsmasq configuration.

Reads ``{"records": [...], "world": [...]}`` on stdin: ``records`` are the Sealmail host's (its dns
role's file, the one source of truth), ``world`` the records of the containers around it (their
addresses and PTRs, the remote MTA's domain). Each record: zone, name (ASCII, no trailing dot),
type (A, AAAA, MX, TXT, SRV, CNAME, PTR), value, priority (MX). MX/CNAME/SRV/PTR targets end with
"."; an SRV value is "priority weight port target." and the target "." means the service is not
available (RFC 2782). PTR records name the address in ``name``.

Writes dnsmasq lines on stdout: every zone is local (names not listed are NXDOMAIN, not
forwarded). A/AAAA records of ``world`` inside the host's zones are dropped: there the host's
records alone say what exists.
"""

from __future__ import annotations

import ipaddress
import json
import sys

TYPES = {"A", "AAAA", "MX", "TXT", "SRV", "CNAME", "PTR"}


def target(value: str) -> str:
    if not value.endswith("."):
        raise ValueError(f"target {value!r} must be fully qualified (end with '.')")
    return value[:-1]


def quoted(text: str) -> str:
    if '"' in text or "\\" in text:
        raise ValueError(f"TXT value {text!r}: quotes and backslashes are not supported here")
    return f'"{text}"'


def in_zone(name: str, zone: str) -> bool:
    return name == zone or name.endswith("." + zone)


def lines_for(records: list[dict], world: list[dict]) -> list[str]:  # noqa: PLR0912 (one branch per type)
    host_zones = {r["zone"] for r in records}
    world = [r for r in world if not (r["type"] in {"A", "AAAA"} and any(in_zone(r["name"], z) for z in host_zones))]
    zones = sorted(host_zones | {r["zone"] for r in world})
    out = [f"local=/{zone}/" for zone in zones]
    addresses: dict[str, list[str]] = {}
    seen: set[tuple[str, str, str]] = set()
    for record in records + world:
        kind, name, value = record["type"], record["name"].lower(), record["value"]
        if kind not in TYPES:
            raise ValueError(f"record type {kind!r} of {name} is not one this scenario publishes")
        if (kind, name, value) in seen:
            continue
        seen.add((kind, name, value))
        if kind in {"A", "AAAA"}:
            addresses.setdefault(name, []).append(value)
        elif kind == "MX":
            out.append(f"mx-host={name},{target(value)},{record.get('priority') or 0}")
        elif kind == "TXT":
            out.append(f"txt-record={name},{quoted(value)}")
        elif kind == "CNAME":
            out.append(f"cname={name},{target(value)}")
        elif kind == "SRV":
            priority, weight, port, host = value.split()
            if host == ".":
                # "Service not available" (RFC 2782): the record as published, in raw RDATA (dnsmasq's
                # own srv-host without a target answers port 1): priority, weight, port, root name.
                fields = (int(priority), int(weight), int(port))
                rdata = b"".join(n.to_bytes(2, "big") for n in fields) + bytes(1)
                out.append(f"dns-rr={name},33,{rdata.hex()}")
            else:
                out.append(f"srv-host={name},{target(host)},{port},{priority},{weight}")
        elif kind == "PTR":
            reverse = ipaddress.ip_address(name).reverse_pointer
            out.append(f"ptr-record={reverse},{target(value)}")
    for name, values in addresses.items():
        # One host-record per address: dnsmasq takes at most one IPv4 and one IPv6 per line.
        out.extend(f"host-record={name},{value}" for value in values)
    reverse_zones = sorted(
        {
            ipaddress.ip_network(f"{r['name']}/{24 if '.' in r['name'] else 64}", strict=False)
            for r in world
            if r["type"] == "PTR"
        },
        key=str,
    )
    for network in reverse_zones:
        out.append(f"local=/{reverse_zone(network)}/")
    return out


def reverse_zone(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> str:
    """The in-addr.arpa / ip6.arpa zone of a /24 or /64."""
    labels = network.network_address.reverse_pointer.split(".")
    keep = network.prefixlen // (8 if network.version == 4 else 4)
    return ".".join(labels[len(labels) - 2 - keep :])


def main() -> None:
    data = json.load(sys.stdin)
    print("# Written by molecule/world/dnsmasq_records.py from the host's dns-records.json.")
    print("\n".join(lines_for(data["records"], data.get("world", []))))


if __name__ == "__main__":
    main()
