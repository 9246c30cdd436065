"""DAV benchmark: ``sealmail serve dav`` beside Radicale with its own filesystem storage.

    .venv/bin/python bench/dav.py [--events 1000] [--cards 1000] [--rounds 20]

Both servers run as their own processes on loopback with the same TLS certificate and the same
client (httpx, one keep-alive connection): PUT of N events one by one (rate and median latency), a
one-month calendar-query REPORT with calendar data, PROPFIND depth 1 on the calendar, a
sync-collection REPORT after 10 changes, PUT of N vCards and an addressbook-query. Sealmail runs
with the production Argon2 cost (logins are cached, so it is paid once) and every byte it stores is
encrypted; Radicale runs with htpasswd (plain) authentication and its default storage and cache.

The ratio column is Radicale / Sealmail for times and Sealmail / Radicale for rates: above 1 means
Sealmail is faster.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from sealmail.tls.devca import DevCertificates, ensure_dev_certificates

ROOT = Path(__file__).resolve().parent.parent
USER = "bench@example.test"
ICS = {"Content-Type": "text/calendar; charset=utf-8"}
VCF = {"Content-Type": "text/vcard; charset=utf-8"}
FIRST_NAMES = [
    "Ada",
    "Alan",
    "Grace",
    "Edsger",
    "Barbara",
    "Donald",
    "Frances",
    "Ken",
    "Radia",
    "Tim",
    "Sophie",
    "Linus",
]
LAST_NAMES = ["Lovelace", "Turing", "Hopper", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Perlman", "Lee"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError("server did not start")


# ---- data ----------------------------------------------------------------------------------------
def make_event(i: int, base: datetime, rng: random.Random) -> tuple[str, str]:
    start = base + timedelta(days=rng.randrange(0, 365), hours=rng.randrange(8, 18))
    end = start + timedelta(minutes=rng.choice([30, 60, 90]))
    fmt = "%Y%m%dT%H%M%SZ"
    rrule = "RRULE:FREQ=WEEKLY;COUNT=10\r\n" if i % 20 == 0 else ""
    uid = f"bench-event-{i}@example.test"
    text = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Sealmail bench//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:{start.strftime(fmt)}\r\nDTEND:{end.strftime(fmt)}\r\n"
        f"SUMMARY:Meeting {i} about project {rng.randrange(100)}\r\n"
        f"DESCRIPTION:Agenda item {i}: review, plan, decide.\r\nLOCATION:Room {rng.randrange(1, 40)}\r\n{rrule}"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    return f"{uid}.ics", text


def make_card(i: int, rng: random.Random) -> tuple[str, str]:
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    uid = f"bench-card-{i}"
    name = f"{first} {last} {i}"
    text = (
        f"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{uid}\r\nFN:{name}\r\nN:{last};{first};;;\r\n"
        f"EMAIL;TYPE=INTERNET:{first.lower()}.{last.lower()}{i}@example.org\r\n"
        f"TEL;TYPE=CELL:+41 79 {rng.randrange(1000000, 9999999)}\r\nORG:Company {rng.randrange(50)}\r\nEND:VCARD\r\n"
    )
    return f"{uid}.vcf", text


def calendar_query(start: str, end: str) -> str:
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<c:calendar-query xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">'
        "<d:prop><d:getetag/><c:calendar-data/></d:prop>"
        '<c:filter><c:comp-filter name="VCALENDAR"><c:comp-filter name="VEVENT">'
        f'<c:time-range start="{start}" end="{end}"/></c:comp-filter></c:comp-filter></c:filter></c:calendar-query>'
    )


PROPFIND = (
    '<?xml version="1.0" encoding="utf-8"?><d:propfind xmlns:d="DAV:" xmlns:cs="http://calendarserver.org/ns/">'
    "<d:prop><d:getetag/><d:getcontenttype/><d:resourcetype/><cs:getctag/></d:prop></d:propfind>"
)
ADDRESSBOOK_QUERY = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<cr:addressbook-query xmlns:d="DAV:" xmlns:cr="urn:ietf:params:xml:ns:carddav">'
    "<d:prop><d:getetag/><cr:address-data/></d:prop>"
    '<cr:filter><cr:prop-filter name="FN"><cr:text-match collation="i;unicode-casemap" match-type="contains">'
    "knuth 1</cr:text-match></cr:prop-filter></cr:filter></cr:addressbook-query>"
)


def sync_body(token: str) -> str:
    return (
        '<?xml version="1.0" encoding="utf-8"?><d:sync-collection xmlns:d="DAV:">'
        f"<d:sync-token>{token}</d:sync-token><d:sync-level>1</d:sync-level>"
        "<d:prop><d:getetag/></d:prop></d:sync-collection>"
    )


# ---- servers ---------------------------------------------------------------------------------------
class Sealmail:
    name = "sealmail"

    def __init__(self, workdir: Path, certs: DevCertificates) -> None:
        from sealmail.config.sqlite import SQLiteConfigStore
        from sealmail.services import aliases, credentials, domains
        from sealmail.settings import Settings

        self.data = workdir / "sealmail"
        self.port, other = free_port(), free_port()
        settings = Settings(data_dir=self.data)  # production Argon2 cost
        store = SQLiteConfigStore(settings.config_db_path)
        try:
            domains.add_domain(store, "example.test")
            aliases.add_alias(store, USER, storage=True)
            self.password = credentials.set_password(store, settings, USER)
        finally:
            store.close()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("SEALMAIL_")},
            "SEALMAIL_DATA_DIR": str(self.data),
            "SEALMAIL_BIND_ADDRESSES": "127.0.0.1",
            "SEALMAIL_CALDAV_PORT": str(self.port),
            "SEALMAIL_CARDDAV_PORT": str(other),
            "SEALMAIL_TLS_CERT_FILE": str(certs.cert),
            "SEALMAIL_TLS_KEY_FILE": str(certs.key),
            "SEALMAIL_LOG_LEVEL": "WARNING",
        }
        binary = Path(sys.executable).parent / "sealmail"
        self.proc = subprocess.Popen([str(binary), "serve", "dav"], env=env, stdin=subprocess.DEVNULL)
        wait_listening(self.port, self.proc)
        self.base = f"https://127.0.0.1:{self.port}"
        self.calendar = "/bench%40example.test/calendar/"
        self.book = "/bench%40example.test/contacts/"

    def prepare(self, client: httpx.Client) -> None:
        client.request("PROPFIND", "/", headers={"Depth": "0"})  # first login makes the defaults

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)


class Radicale:
    name = "radicale"

    def __init__(self, workdir: Path, certs: DevCertificates) -> None:
        root = workdir / "radicale"
        root.mkdir()
        self.password = "bench-password"
        (root / "users").write_text(f"{USER}:{self.password}\n")
        self.port = free_port()
        config = root / "config"
        config.write_text(
            f"""[server]
hosts = 127.0.0.1:{self.port}
ssl = True
certificate = {certs.cert}
key = {certs.key}
[auth]
type = htpasswd
htpasswd_filename = {root / "users"}
htpasswd_encryption = plain
[storage]
filesystem_folder = {root / "collections"}
[web]
type = none
[logging]
level = warning
"""
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "radicale", "--config", str(config)],
            stdin=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,  # its start-up banner and the readiness probe's aborted handshake
        )
        wait_listening(self.port, self.proc)
        self.base = f"https://127.0.0.1:{self.port}"
        self.calendar = "/bench@example.test/calendar/"
        self.book = "/bench@example.test/contacts/"

    def prepare(self, client: httpx.Client) -> None:
        mkcalendar = (
            '<?xml version="1.0"?><c:mkcalendar xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:set><d:prop>'
            "<d:displayname>Calendar</d:displayname></d:prop></d:set></c:mkcalendar>"
        )
        mkbook = (
            '<?xml version="1.0"?><d:mkcol xmlns:d="DAV:" xmlns:cr="urn:ietf:params:xml:ns:carddav"><d:set><d:prop>'
            "<d:resourcetype><d:collection/><cr:addressbook/></d:resourcetype></d:prop></d:set></d:mkcol>"
        )
        assert client.request("MKCALENDAR", self.calendar, content=mkcalendar).status_code == 201
        assert client.request("MKCOL", self.book, content=mkbook).status_code == 201

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)


# ---- workload --------------------------------------------------------------------------------------
def timed(fn: Callable[[], httpx.Response], expect: int = 207) -> float:
    start = time.perf_counter()
    response = fn()
    elapsed = time.perf_counter() - start
    if response.status_code != expect:
        raise RuntimeError(
            f"{response.request.method} {response.request.url}: {response.status_code} {response.text[:200]}"
        )
    return elapsed


def run(server: Sealmail | Radicale, ca: Path, args: argparse.Namespace) -> dict[str, float]:
    rng = random.Random(7)
    base = datetime(2026, 1, 1, tzinfo=UTC)
    events = [make_event(i, base, rng) for i in range(args.events)]
    cards = [make_card(i, rng) for i in range(args.cards)]
    results: dict[str, float] = {}
    context = ssl.create_default_context(cafile=str(ca))
    # TCP_NODELAY: without it the client's header and body writes meet the server's delayed ACK and
    # every request waits ~40 ms, whatever the server does.
    transport = httpx.HTTPTransport(verify=context, socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
    with httpx.Client(base_url=server.base, auth=(USER, server.password), transport=transport, timeout=120) as client:
        server.prepare(client)
        latencies = [
            timed(functools.partial(client.put, server.calendar + h, content=t, headers=ICS), 201) for h, t in events
        ]
        results["put_events_per_s"] = len(latencies) / sum(latencies)
        results["put_p50_ms"] = statistics.median(latencies) * 1000

        query = calendar_query("20260601T000000Z", "20260701T000000Z")
        found = client.request("REPORT", server.calendar, content=query, headers={"Depth": "1"})
        results["report_month_items"] = found.text.count("<D:href>") + found.text.count("<href>")
        results["report_month_ms"] = 1000 * statistics.median(
            timed(lambda: client.request("REPORT", server.calendar, content=query, headers={"Depth": "1"}))
            for _ in range(args.rounds)
        )
        results["propfind_depth1_ms"] = 1000 * statistics.median(
            timed(lambda: client.request("PROPFIND", server.calendar, content=PROPFIND, headers={"Depth": "1"}))
            for _ in range(args.rounds)
        )
        sync_times = []
        for round_ in range(min(args.rounds, 10)):
            answer = client.request("REPORT", server.calendar, content=sync_body(""), headers={"Depth": "0"})
            token = answer.text.split("sync-token>")[1].split("<")[0]
            for href, text in events[round_ * 10 : round_ * 10 + 10]:
                changed = text.replace("SUMMARY:Meeting", f"SUMMARY:Changed {round_} meeting")
                client.put(server.calendar + href, content=changed, headers=ICS)
            body = sync_body(token)
            sync_times.append(
                timed(
                    functools.partial(client.request, "REPORT", server.calendar, content=body, headers={"Depth": "0"})
                )
            )
        results["sync_after_10_ms"] = 1000 * statistics.median(sync_times)

        card_latencies = [
            timed(functools.partial(client.put, server.book + h, content=t, headers=VCF), 201) for h, t in cards
        ]
        results["put_cards_per_s"] = len(card_latencies) / sum(card_latencies)
        results["addressbook_query_ms"] = 1000 * statistics.median(
            timed(lambda: client.request("REPORT", server.book, content=ADDRESSBOOK_QUERY, headers={"Depth": "1"}))
            for _ in range(args.rounds)
        )
    return results


ROWS = [
    ("put_events_per_s", "PUT events/s", "rate"),
    ("put_p50_ms", "PUT p50 (ms)", "time"),
    ("report_month_ms", "one-month REPORT (ms)", "time"),
    ("propfind_depth1_ms", "PROPFIND depth 1 (ms)", "time"),
    ("sync_after_10_ms", "sync-collection after 10 changes (ms)", "time"),
    ("put_cards_per_s", "PUT vCards/s", "rate"),
    ("addressbook_query_ms", "addressbook-query (ms)", "time"),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--cards", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--json", action="store_true", help="print the raw numbers as JSON too")
    args = parser.parse_args()
    if shutil.which("sealmail", path=str(Path(sys.executable).parent)) is None:
        print("run with the project's virtualenv (.venv/bin/python bench/dav.py)", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="sealmail-bench-dav-") as tmp:
        workdir = Path(tmp)
        certs = ensure_dev_certificates(workdir / "tls")
        measured = {}
        for server_kind in (Radicale, Sealmail):
            server = server_kind(workdir, certs)
            try:
                measured[server.name] = run(server, certs.ca_cert, args)
            finally:
                server.stop()
    sealmail, radicale = measured["sealmail"], measured["radicale"]
    print(
        f"DAV benchmark: {args.events} events, {args.cards} vCards, median of {args.rounds} queries, HTTPS keep-alive"
    )
    print(
        f"one-month REPORT returns {int(sealmail['report_month_items'])} resources (Radicale: {int(radicale['report_month_items'])})"
    )
    print(f"{'':40} {'radicale':>10} {'sealmail':>10} {'ratio':>7}")
    for key, label, kind in ROWS:
        ratio = sealmail[key] / radicale[key] if kind == "rate" else radicale[key] / sealmail[key]
        print(f"{label:40} {radicale[key]:10.1f} {sealmail[key]:10.1f} {ratio:6.2f}x")
    print("ratio: how many times faster Sealmail is (Radicale/Sealmail for times, Sealmail/Radicale for rates)")
    if args.json:
        print(json.dumps(measured, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
