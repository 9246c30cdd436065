"""A real DNS server for tests: Debian's dnsmasq on a free loopback port, serving test zones.

    server = DnsServer(tmp_path)
    server.mx("b.test", "mx.b.test", 10); server.a("mx.b.test", "127.0.0.1"); server.txt(name, "v=spf1 -all")
    server.start()            # writes the config, checks it (dnsmasq --test), starts it in the foreground
    settings.dns_servers = [server.address]     # "127.0.0.1:<port>"
    server.stop()

Every name outside the records is NXDOMAIN (``address=/#/``). Answers carry TTL 0 unless
``DnsServer(workdir, ttl=N)`` (benchmarks use real-world TTLs). Long TXT values (DKIM keys) are
split into 255-byte strings by dnsmasq itself. Records can be added and the server restarted.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import dns.exception
import dns.message
import dns.query

from support import free_port, require_tool


class DnsServer:
    def __init__(self, workdir: Path, *, ttl: int = 0) -> None:
        self.workdir = workdir
        self.ttl = ttl  # of every answer (dnsmasq's local-ttl; 0: resolvers cannot cache)
        self.lines: list[str] = []
        self.domains: set[str] = set()
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _zone(self, name: str) -> None:
        labels = name.rstrip(".").split(".")
        self.domains.add(".".join(labels[-2:]))

    def mx(self, domain: str, host: str, preference: int = 10) -> None:
        self._zone(domain)
        self.lines.append(f"mx-host={domain},{host},{preference}")

    def a(self, name: str, address: str) -> None:
        self._zone(name)
        self.lines.append(f"host-record={name},{address}")

    def txt(self, name: str, value: str) -> None:
        self._zone(name)
        escaped = value.replace("\\\\", "\\\\\\\\").replace('"', '\\\\"')
        self.lines.append(f'txt-record={name},"{escaped}"')

    def ptr(self, address: str, name: str) -> None:
        """A PTR record alone (``a`` makes one too, for a name that also leads back to the address)."""
        import ipaddress

        self.lines.append(f"ptr-record={ipaddress.ip_address(address).reverse_pointer},{name}")

    def address_only(self, name: str, address: str) -> None:
        """An A or AAAA record without the PTR record ``a`` makes beside it (raw RDATA: dnsmasq's
        host-record always adds the PTR)."""
        import ipaddress

        ip = ipaddress.ip_address(address)
        self._zone(name)
        self.lines.append(f"dns-rr={name},{1 if ip.version == 4 else 28},{ip.packed.hex()}")

    def no_service(self, name: str) -> None:
        """An SRV record saying the service is not offered (RFC 2782: target "."), as raw RDATA
        (dnsmasq's own srv-host without a target answers port 1): priority, weight, port 0, root."""
        self._zone(name)
        self.lines.append(f"dns-rr={name},33,{bytes(7).hex()}")

    def forward(self, zone: str, server: str) -> None:
        """Questions under ``zone`` go to ``server`` ("127.0.0.1#5353"): one that never answers makes
        every lookup there time out."""
        self.lines.append(f"server=/{zone}/{server}")

    def cname(self, name: str, target: str) -> None:
        """dnsmasq answers a CNAME only for a target it knows itself (add an ``a`` record for it)."""
        self._zone(name)
        self.lines.append(f"cname={name},{target}")

    def srv(self, name: str, target: str, port: int, priority: int = 0, weight: int = 1) -> None:
        self._zone(name)
        self.lines.append(f"srv-host={name},{target},{port},{priority},{weight}")

    def _config(self) -> str:
        head = [f"port={self.port}", "listen-address=127.0.0.1", "bind-interfaces", "no-resolv", "no-hosts"]
        if self.ttl:
            head.append(f"local-ttl={self.ttl}")
        head += [f"local=/{d}/" for d in sorted(self.domains)]
        head.append("address=/#/")  # NXDOMAIN for everything else
        return "\n".join(head + self.lines) + "\n"

    def start(self) -> None:
        binary = require_tool("dnsmasq")  # under CI=true a failure, else a skip naming dnsmasq-base
        conf = self.workdir / "dnsmasq.conf"
        conf.write_text(self._config())
        subprocess.run([binary, "--test", f"--conf-file={conf}"], check=True, capture_output=True)
        self.proc = subprocess.Popen(
            [
                binary,
                "--keep-in-foreground",
                f"--conf-file={conf}",
                f"--pid-file={self.workdir / 'dnsmasq.pid'}",
                "--user=root",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        query = dns.message.make_query(".", "NS")
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("dnsmasq exited at start")
            try:
                dns.query.udp(query, "127.0.0.1", port=self.port, timeout=0.2)
                return
            except (dns.exception.Timeout, OSError):
                time.sleep(0.05)
        raise RuntimeError("dnsmasq did not answer")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()
