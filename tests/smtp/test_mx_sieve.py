"""Issue 22: each recipient's Sieve script runs in the MX at delivery, before the message is sealed.

Real parts over real sockets: mail sent with smtplib to the MX, read back over IMAP as the user
(the drain files each copy where the sealed record says), copies and replies sent by the jobs
component's delivery worker to the tests' SMTP sink, a real Redis (the vacation memory), a real DNS
server (dnsmasq: the sink is b.test's MX, and example.test's DKIM keys for checking signatures).

RFC 5228 (fileinto, redirect, keep, discard, envelope), RFC 3894 (copy), RFC 5232 (imap4flags),
RFC 5490 (mailbox :create), RFC 5429 (reject, ereject), RFC 5230 / RFC 3834 (vacation), RFC 5235
(spamtest without a filter: 0).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import email
import imaplib
import re
import smtplib
import ssl

import pytest
import redis
from pydantic import SecretStr

from sealmail.config.models import LogQuery
from sealmail.jobs.component import JobsComponent
from sealmail.queue.store import JobQueue, load_queue_key
from sealmail.services import aliases, credentials, domains, sievescripts
from sealmail.services.dnsrecords import records_for
from sealmail.services.resolve import resolve
from sealmail.smtp.mx import MxComponent
from sealmail.tls.devca import ensure_dev_certificates

import cleandkim
from dnsserver import DnsServer
from smtpsink import Sink
from support import ComponentThread, async_wait_for, free_port

pytestmark = pytest.mark.tool("dnsmasq", "redis-server")
DEMO = "demo@example.test"
OTHER = "other@example.test"
SENDER = "coyote@b.test"


@pytest.fixture
def world_overrides(request) -> dict:
    """Settings a test changes for its MX and jobs (``indirect``); ``{"rspamd": True}`` scans with
    the session's real rspamd (``tests/rspamdkit.py``)."""
    extra = dict(getattr(request, "param", {}))
    if extra.pop("rspamd", False):
        rspamd = request.getfixturevalue("rspamd")
        extra.update(rspamd_url=rspamd.url, rspamd_timeout=10.0)
    return extra


@pytest.fixture
async def world(settings, config, tmp_path, redis_url, world_overrides):
    certs = ensure_dev_certificates(tmp_path / "tls")
    dnsd = DnsServer(tmp_path)
    dnsd.mx("b.test", "mx.b.test")
    dnsd.a("mx.b.test", "127.0.0.1")
    dnsd.txt("_nothing.example.org", "v=none")
    sink = Sink(free_port())
    vacation_redis = redis_url.rsplit("/", 1)[0] + "/7"  # a database of its own, emptied for each test
    redis.Redis.from_url(vacation_redis).flushdb()
    settings = settings.model_copy(
        update={
            "dns_servers": [dnsd.address],
            "mx_port": 0,
            "imaps_port": 0,
            "imap_port": 0,
            "bind_addresses": ["127.0.0.1"],
            "tls_cert_file": certs.cert,
            "tls_key_file": certs.key,
            "hostname": "mx.example.test",
            "smtp_relay_port": sink.port,
            "smtp_retry_base": 0.3,
            "smtp_timeout": 5.0,
            "redis_url": SecretStr(vacation_redis),
            **world_overrides,
        }
    )
    domains.add_domain(config, "example.test", settings)
    for record in records_for(settings, "example.test"):
        if record.type == "TXT" and "_domainkey" in record.name:
            dnsd.txt(record.name, record.value)  # the vacation reply's DKIM signatures are checked
    dnsd.start()
    await sink.start()
    passwords = {}
    for address in (DEMO, OTHER):
        aliases.add_alias(config, address)
        passwords[address] = credentials.set_password(config, settings, address)
    aliases.add_alias(config, "fwd@example.test", recipients=["bob@b.test"])
    mx = MxComponent(settings)
    port = (await mx.start())["mx"]
    jobs = JobsComponent(settings)
    await jobs.start()
    imap = await asyncio.to_thread(ComponentThread, "imap", settings)

    class World:
        pass

    w = World()
    w.port, w.settings, w.config, w.sink, w.passwords, w.ca, w.imap, w.dns = (
        port,
        settings,
        config,
        sink,
        passwords,
        str(certs.ca_cert),
        imap,
        dnsd,
    )
    w.redis = redis.Redis.from_url(vacation_redis)
    yield w
    await asyncio.to_thread(imap.stop)
    await jobs.stop()
    await mx.stop()
    await sink.stop()
    dnsd.stop()


def _script(w, address: str, text: str, name: str = "rules") -> None:
    """Upload and activate a script as ManageSieve would (compiled first)."""
    alias = resolve(w.config, address).alias
    sievescripts.save_and_activate(w.config, alias.id, name, text)


def _message(subject: str, sender: str = SENDER, to: str = DEMO, extra: str = "") -> bytes:
    return (
        f"From: Wile E. Coyote <{sender}>\r\nTo: <{to}>\r\nSubject: {subject}\r\n"
        f"Date: Mon, 7 Dec 2026 09:30:00 +0100\r\nMessage-ID: <{subject.replace(' ', '.')}@b.test>\r\n"
        f"{extra}\r\nLook, I'm sorry about the whole anvil thing.\r\n"
    ).encode()


def _send(w, raw: bytes, rcpts: list[str] | None = None, mail_from: str = SENDER) -> tuple[int, bytes]:
    with smtplib.SMTP("127.0.0.1", w.port, timeout=30) as client:
        client.ehlo("mail.b.test")
        client.mail(mail_from)
        for rcpt in rcpts or [DEMO]:
            code, reply = client.rcpt(rcpt)
            assert code == 250, (code, reply)
        try:
            return client.data(raw)
        except smtplib.SMTPDataError as exc:
            return exc.smtp_code, exc.smtp_error


_FETCHED = re.compile(rb"FLAGS \(([^)]*)\)")


def _imap(w, address: str, *folders: str) -> dict[str, list[tuple[frozenset[str], bytes]]]:
    """Each folder's messages (flags, bytes) as the user's IMAP client sees them; a folder that does
    not exist is left out."""
    tls = ssl.create_default_context(cafile=w.ca)
    client = imaplib.IMAP4_SSL("127.0.0.1", w.imap.ports["imaps"], ssl_context=tls, timeout=30)
    try:
        client.login(address, w.passwords[address])
        found: dict[str, list[tuple[frozenset[str], bytes]]] = {}
        for name in folders:
            status, _ = client.select(f'"{name}"', readonly=True)
            if status != "OK":
                continue
            _, data = client.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[])")
            messages = []
            for part in data:
                if isinstance(part, tuple):
                    flags = _FETCHED.search(part[0])
                    names = flags.group(1).decode().split() if flags else []
                    messages.append((frozenset(n for n in names if n != "\\Recent"), part[1]))
            found[name] = messages
        return found
    finally:
        client.logout()


async def _read(w, address: str, *folders: str) -> dict[str, list[tuple[frozenset[str], bytes]]]:
    return await asyncio.to_thread(_imap, w, address, *folders)


def _queued(w) -> int:
    """Outbound jobs ever queued (pending, done or failed): a reply or copy that was never made is 0."""
    queue = JobQueue(w.settings.data_dir / "queue.sqlite", load_queue_key(w.settings.data_dir))
    try:
        return sum(n for name, n in queue.counts().items() if name.startswith("smtp:"))
    finally:
        queue.close()


def _logs(w, address: str, kind: str | None = None) -> list:
    return w.config.query_logs(LogQuery(address=address, kind=kind, limit=200)).entries


async def _until_sink(w, count: int, timeout: float = 20.0) -> list:
    await async_wait_for(lambda: len(w.sink.received) >= count, timeout=timeout, what=f"{count} message(s) at the sink")
    return w.sink.received


# ---- fileinto, copies, flags ------------------------------------------------------------------------


async def test_rfc5490_fileinto_create_with_rfc5232_flags_lands_in_the_new_folder_over_imap(world) -> None:
    _script(
        world,
        DEMO,
        'require ["fileinto", "mailbox", "imap4flags"];\n'
        'if header :contains "Subject" "invoice" {\n'
        '  fileinto :create :flags ["\\\\Flagged", "$Invoice"] "Bills/2026";\n'
        "}\n",
    )
    code, _ = await asyncio.to_thread(_send, world, _message("your invoice"))
    assert code == 250
    found = await _read(world, DEMO, "INBOX", "Bills/2026")
    assert found["INBOX"] == []
    ((flags, raw),) = found["Bills/2026"]
    assert flags == {"\\Flagged", "$Invoice"}
    assert raw.endswith(_message("your invoice"))


@pytest.mark.parametrize(
    "world_overrides",
    [
        pytest.param({}, id="one-process"),
        pytest.param({"mx_processes": 2, "mx_spool_handoff_max": 1 << 20}, id="two-processes-one-spool-writer"),
    ],
    indirect=True,
)
async def test_rfc3894_fileinto_copy_in_two_folders_is_one_sealed_record_and_each_copy_once(world) -> None:
    _script(
        world,
        DEMO,
        'require ["fileinto", "copy", "imap4flags"];\n'
        'addflag "$Seen-By-Sieve";\n'
        'fileinto :copy "Archive";\nfileinto :copy :flags "\\\\Seen" "Trash";\n',
    )
    code, _ = await asyncio.to_thread(_send, world, _message("three copies"))
    assert code == 250
    # One record in the spool for the three copies (the MX cannot read the mailbox: it seals once).
    mailstore_spool = world.settings.data_dir / "spool"
    credential = world.config.get_credential(resolve(world.config, DEMO).alias.id)
    from sealmail.store.spool import Spool

    spool = Spool(mailstore_spool / f"{credential.mailbox_id}.sqlite")
    try:
        assert spool.count() == 1
    finally:
        spool.close()
    found = await _read(world, DEMO, "INBOX", "Archive", "Trash")
    assert [flags for flags, _ in found["INBOX"]] == [{"$Seen-By-Sieve"}]  # the implicit keep (RFC 3894 §3)
    assert [flags for flags, _ in found["Archive"]] == [{"$Seen-By-Sieve"}]
    assert [flags for flags, _ in found["Trash"]] == [{"\\Seen"}]  # :flags replaces the variable (RFC 5232 §5)
    again = await _read(world, DEMO, "INBOX", "Archive", "Trash")  # a second login drains nothing twice
    assert {name: len(messages) for name, messages in again.items()} == {"INBOX": 1, "Archive": 1, "Trash": 1}


async def test_rfc5228_4_1_fileinto_a_missing_folder_without_create_keeps_in_inbox(world) -> None:
    _script(world, DEMO, 'require "fileinto";\nfileinto "No/Such/Folder";\n')
    code, _ = await asyncio.to_thread(_send, world, _message("lost folder"))
    assert code == 250
    found = await _read(world, DEMO, "INBOX", "No/Such/Folder")
    assert len(found["INBOX"]) == 1
    assert "No/Such/Folder" not in found


async def test_rfc5228_5_4_envelope_and_rfc5235_spamtest_without_a_filter_is_0(world) -> None:
    _script(
        world,
        DEMO,
        'require ["envelope", "fileinto", "mailbox", "spamtest", "relational", "comparator-i;ascii-numeric"];\n'
        'if allof (envelope :domain :is "from" "b.test", envelope :localpart :is "to" "demo",\n'
        '          spamtest :value "eq" :comparator "i;ascii-numeric" "0") {\n'
        '  fileinto :create "From-B";\n'
        "}\n",
    )
    await asyncio.to_thread(_send, world, _message("by envelope"))
    await asyncio.to_thread(_send, world, _message("other sender"), mail_from="someone@elsewhere.test")
    found = await _read(world, DEMO, "INBOX", "From-B")
    assert [b"Subject: by envelope" in raw for _, raw in found["From-B"]] == [True]
    assert [b"Subject: other sender" in raw for _, raw in found["INBOX"]] == [True]


# ---- discard, reject ---------------------------------------------------------------------------------


async def test_rfc5228_4_4_discard_stores_nothing_and_logs_it_without_content(world) -> None:
    _script(world, DEMO, 'if header :contains "Subject" "casino" { discard; }\n', name="no casinos")
    code, _ = await asyncio.to_thread(_send, world, _message("casino bonus"))
    assert code == 250
    found = await _read(world, DEMO, "INBOX", "Junk")
    assert found == {"INBOX": [], "Junk": []}
    (entry,) = [e for e in _logs(world, DEMO) if e.status == "discarded"]
    assert entry.detail == "by Sieve script 'no casinos'"
    assert "casino" not in entry.detail.replace("no casinos", "")


@pytest.mark.parametrize("command", ["reject", "ereject"])
async def test_rfc5429_2_1_1_a_reject_of_the_only_recipient_is_answered_at_data(world, command) -> None:
    # a multi-line reason (RFC 5228 §2.4.2 text:) is made one line of the reply
    _script(world, DEMO, f'require "{command}";\n{command} text:\nI do not want anvils.\nNot ever.\n.\n;\n')
    code, reply = await asyncio.to_thread(_send, world, _message("anvil catalogue"))
    assert (code, reply) == (550, b"5.7.1 I do not want anvils. Not ever.")
    assert (await _read(world, DEMO, "INBOX"))["INBOX"] == []
    assert _queued(world) == 0  # refused in the session: no report is sent
    (entry,) = _logs(world, DEMO)
    assert (entry.status, entry.detail) == ("rejected", "by Sieve script 'rules', answered at DATA (550 5.7.1)")


async def test_rfc5429_2_1_2_a_reject_among_recipients_that_take_it_is_a_dsn_to_the_sender(world) -> None:
    _script(world, DEMO, 'require "reject";\nreject "Not here.";\n')
    code, _ = await asyncio.to_thread(_send, world, _message("to both"), [DEMO, OTHER])
    assert code == 250  # RFC 5321 §4.2.5: one reply for the transaction, and OTHER took it
    assert len((await _read(world, OTHER, "INBOX"))["INBOX"]) == 1
    assert (await _read(world, DEMO, "INBOX"))["INBOX"] == []
    (dsn,) = await _until_sink(world, 1)
    assert dsn.mail_from in ("", "<>")  # RFC 3464 / RFC 5321 §6.1: from the null sender
    assert dsn.rcpt_tos == [SENDER]
    report = email.message_from_bytes(dsn.data)
    assert report.get_content_type() == "multipart/report"
    status = dsn.data.decode("utf-8", "replace")
    assert f"Final-Recipient: rfc822; {DEMO}" in status
    assert "Action: failed" in status
    assert "Status: 5.7.1" in status
    assert "Diagnostic-Code: smtp; 550 5.7.1 Not here." in status
    assert "Look, I'm sorry" not in status  # headers only (RET=HDRS): the content stays here


async def test_rfc5429_a_reject_never_reports_to_the_null_sender(world) -> None:
    _script(world, DEMO, 'require "reject";\nreject "Not here.";\n')
    code, _ = await asyncio.to_thread(_send, world, _message("bounce"), [DEMO, OTHER], "")
    assert code == 250
    assert _queued(world) == 0
    (entry,) = [e for e in _logs(world, DEMO) if e.status == "rejected"]
    assert "no report: the sender is null" in entry.detail


# ---- redirect ------------------------------------------------------------------------------------------


async def test_rfc5228_4_2_redirect_goes_through_the_queue_with_srs_and_cancels_the_keep(world) -> None:
    _script(world, DEMO, 'redirect "bob@b.test";\n')
    code, _ = await asyncio.to_thread(_send, world, _message("pass it on"))
    assert code == 250
    (copy,) = await _until_sink(world, 1)
    assert copy.rcpt_tos == ["bob@b.test"]
    assert copy.mail_from.startswith("SRS0=")
    assert copy.mail_from.endswith("@example.test")
    assert b"\r\nSealmail-Redirected: " in copy.data or copy.data.startswith(b"Sealmail-Redirected: ")
    assert copy.data.endswith(_message("pass it on"))
    assert (await _read(world, DEMO, "INBOX"))["INBOX"] == []
    assert "queued-redirect" in [e.status for e in _logs(world, DEMO)]


async def test_rfc3894_redirect_copy_keeps_a_copy_too(world) -> None:
    _script(world, DEMO, 'require "copy";\nredirect :copy "bob@b.test";\n')
    await asyncio.to_thread(_send, world, _message("copy it"))
    await _until_sink(world, 1)
    assert len((await _read(world, DEMO, "INBOX"))["INBOX"]) == 1


async def test_a_redirect_loop_between_two_aliases_ends_with_one_keep(world) -> None:
    """demo redirects to other, other back to demo: the message carries demo's token the second
    time, so demo keeps it (RFC 5228 §4.2 loop control); nothing is lost, nothing leaves."""
    _script(world, DEMO, f'redirect "{OTHER}";\n')
    _script(world, OTHER, f'redirect "{DEMO}";\n')
    code, _ = await asyncio.to_thread(_send, world, _message("round and round"))
    assert code == 250

    async def kept() -> bool:
        return len((await _read(world, DEMO, "INBOX"))["INBOX"]) == 1

    await async_wait_for(kept, timeout=30, what="the message back in demo's INBOX")
    assert _queued(world) == 2  # demo -> other, other -> demo; then no more
    await asyncio.sleep(1.5)
    assert _queued(world) == 2
    assert len((await _read(world, DEMO, "INBOX"))["INBOX"]) == 1
    assert (await _read(world, OTHER, "INBOX"))["INBOX"] == []
    assert world.sink.received == []
    assert "redirect-loop" in [e.status for e in _logs(world, DEMO)]


# ---- a script that fails never loses mail ---------------------------------------------------------


async def test_a_stored_script_that_does_not_compile_keeps_delivering_and_logs_its_line(world) -> None:
    alias = resolve(world.config, DEMO).alias
    world.config.put_sieve_script(alias.id, "broken", 'require "fileinto";\nif header :is "Subject" {\n discard;\n}\n')
    world.config.activate_sieve_script(alias.id, "broken")  # stored bypassing the compile check
    code, _ = await asyncio.to_thread(_send, world, _message("still arrives"))
    assert code == 250
    assert len((await _read(world, DEMO, "INBOX"))["INBOX"]) == 1
    (entry,) = _logs(world, DEMO, "error")
    assert entry.status == "sieve-error"
    assert entry.detail.startswith("Sieve script 'broken', line 2: ")
    assert "still arrives" not in entry.detail


async def test_a_run_time_error_keeps_the_message_and_logs_it(world) -> None:
    """RFC 5228 §2.10.6: five redirects are more than this server runs; nothing is sent, all is kept."""
    _script(world, DEMO, "".join(f'redirect "u{i}@b.test";\n' for i in range(5)), name="too many")
    await asyncio.to_thread(_send, world, _message("many redirects"))
    assert len((await _read(world, DEMO, "INBOX"))["INBOX"]) == 1
    (entry,) = _logs(world, DEMO, "error")
    assert entry.detail == "Sieve script 'too many', line 5: more than 4 redirects; the message was kept in INBOX"
    assert _queued(world) == 0


HEAVY = 'require "body";\n' + "".join(
    "if body :text :matches [" + ", ".join(f'"*needle{i}*"' for i in range(40)) + "] { discard; }\n" for _ in range(50)
)
BIG = _message("big body").replace(b"Look, I'm", b"lorem ipsum dolor sit amet " * 30000 + b"Look, I'm")


async def test_an_exhausted_budget_keeps_the_message(world) -> None:
    _script(world, DEMO, HEAVY, name="heavy")
    code, _ = await asyncio.to_thread(_send, world, BIG)
    assert code == 250
    assert len((await _read(world, DEMO, "INBOX"))["INBOX"]) == 1
    (entry,) = _logs(world, DEMO, "error")
    assert entry.detail.endswith(": the script does too much work on this message; the message was kept in INBOX")


@pytest.mark.parametrize("world_overrides", [{"mx_sieve_timeout": 0.05, "max_message_size": 10_000_000}], indirect=True)
async def test_a_script_past_the_timeout_is_cut_off_and_the_message_kept(world) -> None:
    _script(world, DEMO, HEAVY, name="heavy")
    code, _ = await asyncio.to_thread(_send, world, BIG)
    assert code == 250
    assert len((await _read(world, DEMO, "INBOX"))["INBOX"]) == 1
    (entry,) = _logs(world, DEMO, "error")
    assert entry.detail == (
        "Sieve script 'heavy': the script ran longer than 0.05 s on this message; the message was kept in INBOX"
    )


@pytest.mark.parametrize("world_overrides", [{"max_message_size": 10_000_000}], indirect=True)
async def test_heavy_scripts_run_off_the_event_loop(world) -> None:
    """Eight messages whose script works to the end of its budget (each run takes this machine about
    0.2 s or more): run on the MX's event loop they would stall it that long eight times; on the
    Sieve threads the loop (this test's: the MX runs in it) keeps its ticks."""
    _script(world, DEMO, HEAVY, name="heavy")
    loop = asyncio.get_running_loop()
    lags: list[float] = []
    stop = asyncio.Event()

    async def tick() -> None:
        while not stop.is_set():
            before = loop.time()
            await asyncio.sleep(0.01)
            lags.append(loop.time() - before - 0.01)

    ticker = asyncio.create_task(tick())
    # The clients on threads of their own: the loop's default threads are the MX's (RCPT, the spool).
    with concurrent.futures.ThreadPoolExecutor(8) as clients:
        try:
            results = await asyncio.gather(*(loop.run_in_executor(clients, _send, world, BIG) for _ in range(8)))
        finally:
            stop.set()
            await ticker
    assert [code for code, _ in results] == [250] * 8
    details = [e.detail for e in _logs(world, DEMO, "error")]
    assert len(details) == 8  # every run went to the end of its budget
    assert all(
        d.endswith("the script does too much work on this message; the message was kept in INBOX") for d in details
    )
    stalls = [lag for lag in lags if lag > 0.15]
    assert len(stalls) <= 2, sorted(lags)[-10:]  # a loaded machine may preempt the loop now and then


# ---- vacation ------------------------------------------------------------------------------------------

VACATION = (
    'require ["vacation"];\n'
    'vacation :days 3 :subject "Away until Monday" :from "demo@example.test"\n'
    '  :addresses ["demo@example.test"] "I am away; your message will be read on Monday.";\n'
)


async def test_rfc5230_vacation_reply_is_signed_sent_once_per_sender_and_remembered_in_redis(world) -> None:
    _script(world, DEMO, VACATION, name="away")
    await asyncio.to_thread(_send, world, _message("are you there", extra="References: <older@b.test>\r\n"))
    (reply,) = await _until_sink(world, 1)
    assert reply.mail_from in ("", "<>")  # RFC 5230 §5 / RFC 3834 §3.3
    assert reply.rcpt_tos == [SENDER]
    parsed = email.message_from_bytes(reply.data)
    assert parsed["Auto-Submitted"].startswith("auto-replied")  # RFC 3834 §5
    assert parsed["Subject"] == "Away until Monday"
    assert parsed["From"] == DEMO
    assert parsed["To"] == SENDER
    assert parsed["In-Reply-To"] == "<are.you.there@b.test>"
    assert parsed["References"] == "<older@b.test> <are.you.there@b.test>"
    assert "will be read on Monday" in parsed.get_payload(decode=True).decode()
    verdicts = await asyncio.to_thread(cleandkim.verify, reply.data, dns=world.dns.address)
    assert sorted(cleandkim.verdicts(verdicts)) == ["ed25519-sha256 pass", "rsa-sha256 pass"], verdicts
    # The memory: one key in Redis, an HMAC (no address in clear), expiring after :days.
    (key,) = world.redis.keys("sealmail:vacation:*")
    assert b"b.test" not in key
    assert b"example" not in key
    assert 3 * 86400 - 60 < world.redis.ttl(key) <= 3 * 86400
    # once per sender per :days; the message itself is delivered every time
    await asyncio.to_thread(_send, world, _message("still there"))
    await asyncio.to_thread(_send, world, _message("hello", sender="roadrunner@b.test"), mail_from="roadrunner@b.test")
    replies = await _until_sink(world, 2)
    assert _queued(world) == 2
    assert [r.rcpt_tos for r in world.sink.received] == [[SENDER], ["roadrunner@b.test"]]
    assert replies[1].data.count(b"Auto-Submitted: auto-replied") == 1
    assert len((await _read(world, DEMO, "INBOX"))["INBOX"]) == 3


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param("Precedence: bulk\r\n", id="RFC 5230 §4.6 Precedence bulk"),
        pytest.param("Precedence: list\r\n", id="RFC 5230 §4.6 Precedence list"),
        pytest.param("List-Id: <anvils.b.test>\r\n", id="RFC 2919 List-Id"),
        pytest.param("Auto-Submitted: auto-generated\r\n", id="RFC 3834 §2 Auto-Submitted"),
    ],
)
async def test_rfc3834_no_vacation_reply_to_lists_bulk_or_automatic_mail(world, extra) -> None:
    _script(world, DEMO, VACATION, name="away")
    await asyncio.to_thread(_send, world, _message("newsletter", extra=extra))
    assert len((await _read(world, DEMO, "INBOX"))["INBOX"]) == 1
    assert _queued(world) == 0
    assert world.redis.keys("sealmail:vacation:*") == []


async def test_rfc5230_no_vacation_reply_to_the_null_sender(world) -> None:
    _script(world, DEMO, VACATION, name="away")
    code, _ = await asyncio.to_thread(_send, world, _message("bounce"), mail_from="")
    assert code == 250
    assert _queued(world) == 0


# ---- forwarding aliases are not the script's --------------------------------------------------------


async def test_a_forwarding_alias_without_a_mailbox_runs_no_script(world) -> None:
    code, _ = await asyncio.to_thread(_send, world, _message("forward me", to="fwd@example.test"), ["fwd@example.test"])
    assert code == 250
    (copy,) = await _until_sink(world, 1)
    assert copy.rcpt_tos == ["bob@b.test"]
    assert b"Sealmail-Redirected" not in copy.data


# ---- the spam filter's verdict and the script (a real rspamd) ----------------------------------------

SCANNED = [pytest.param({"rspamd": True}, marks=pytest.mark.tool("rspamd"), id="rspamd")]


@pytest.mark.parametrize("world_overrides", SCANNED, indirect=True)
@pytest.mark.parametrize(
    ("script", "folder"),
    [
        pytest.param("", "Junk", id="RFC 5228 §2.10.2 the implicit keep of spam goes to Junk"),
        pytest.param("keep;", "Junk", id="RFC 5228 §4.3 keep: the default location, Junk for spam"),
        pytest.param('require "fileinto";\nfileinto "INBOX";', "INBOX", id="fileinto INBOX wins over the verdict"),
        pytest.param('require "fileinto";\nfileinto "Archive";', "Archive", id="fileinto wins over the verdict"),
        pytest.param('require "fileinto";\nfileinto "Gone";', "Junk", id="RFC 5228 §4.1 a missing folder: keep, Junk"),
    ],
)
async def test_how_the_spam_verdict_and_the_script_decide_the_folder(world, script, folder) -> None:
    from rspamdkit import JUNK_MARK

    _script(world, DEMO, script or "# nothing\n")
    code, _ = await asyncio.to_thread(_send, world, _message(f"cheap watches {JUNK_MARK}"))
    assert code == 250
    found = await _read(world, DEMO, "INBOX", "Junk", "Archive")
    assert {name: len(messages) for name, messages in found.items()} == {
        name: int(name == folder) for name in ("INBOX", "Junk", "Archive")
    }
    ((_, raw),) = found[folder]
    assert b"X-Spam-Status: Yes, score=" in raw  # the script saw, and the user gets, the verdict's fields


@pytest.mark.parametrize("world_overrides", SCANNED, indirect=True)
async def test_rfc5235_spamtest_is_fed_by_rspamd_and_no_vacation_answers_spam(world) -> None:
    """Junk by rspamd's own action is 10 ("definitely spam"); a clean message is between 1 and 9;
    the vacation the same script asks for goes to the clean message's sender only."""
    from rspamdkit import JUNK_MARK

    _script(
        world,
        DEMO,
        'require ["spamtest", "relational", "comparator-i;ascii-numeric", "fileinto", "mailbox", "vacation"];\n'
        'vacation :days 1 :addresses ["demo@example.test"] "Away.";\n'
        'if spamtest :value "eq" :comparator "i;ascii-numeric" "10" { fileinto :create "Spam10"; }\n'
        'elsif spamtest :value "ge" :comparator "i;ascii-numeric" "1" { fileinto :create "Scanned"; }\n',
    )
    await asyncio.to_thread(_send, world, _message(f"offer {JUNK_MARK}"))
    await asyncio.to_thread(_send, world, _message("lunch", sender="roadrunner@b.test"), mail_from="roadrunner@b.test")
    found = await _read(world, DEMO, "Spam10", "Scanned", "INBOX", "Junk")
    assert [b"Subject: offer" in raw for _, raw in found["Spam10"]] == [True]
    assert [b"Subject: lunch" in raw for _, raw in found["Scanned"]] == [True]
    (reply,) = await _until_sink(world, 1)
    assert reply.rcpt_tos == ["roadrunner@b.test"]
    assert _queued(world) == 1
