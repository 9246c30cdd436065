"""A real rspamd for tests (Debian's package), offline and deterministic.

``sealmail.spam.localrspamd`` writes its configuration (Debian's stock config included, network
modules off, its own loopback ports); here it gets the tests' own DNS server (dnsmasq: NXDOMAIN for
every name, so SPF/DKIM/DMARC/HELO lookups answer at once and always the same), the session's Redis
(database 1, for Bayes and rate limits), and one test-only rule:

* ``SEALMAIL_TEST_JUNK`` (score 8) when the Subject contains ``[junk-band]``: with Debian's
  thresholds (add header 6, reject 15) such a message lands in the ``add header`` band;
* ``SEALMAIL_TEST_HOSTNAME`` (score 0, the name as its option) when rspamd knows the client's host
  name: the MX sent ``Hostname`` (this rspamd's DNS has no PTR records, so it never finds one itself).

The compiled hyperscan databases stay in ``localrspamd.default_cache_dir()`` between sessions (the
one ``sealmail dev`` uses too): the first start compiles for tens of seconds, the next ones take
about a second.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from sealmail.spam.localrspamd import LocalRspamd, default_cache_dir

from dnsserver import DnsServer
from support import require_tool

GTUBE = b"XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
JUNK_MARK = "[junk-band]"

TEST_RULES = """-- Test-only rule (tests/rspamdkit.py): lands a message in the "add header" band.
rspamd_config:register_symbol({
  name = 'SEALMAIL_TEST_JUNK',
  score = 8.0,
  group = 'sealmail_tests',
  description = 'Subject carries the test marker for the add header band',
  callback = function(task)
    local subject = task:get_subject()
    return subject ~= nil and subject:find('MARK', 1, true) ~= nil
  end,
})
rspamd_config:register_symbol({
  name = 'SEALMAIL_TEST_HOSTNAME',
  score = 0.0,
  group = 'sealmail_tests',
  description = 'The client host name rspamd was given',
  callback = function(task)
    local name = task:get_hostname()
    if name ~= nil and name ~= 'unknown' then
      return true, name
    end
    return false
  end,
})
""".replace("MARK", JUNK_MARK)


@dataclass(frozen=True)
class Learns:
    """rspamd's learning counters: ``learned`` from the controller's ``/stat`` (every learn, at once),
    and per class from Bayes's own Redis hash (``RS``: ``learns_ham``, ``learns_spam``). ``/stat``'s
    per-class numbers (``statfiles[].revision``) are refreshed from Redis only about once a minute
    (measured with rspamd 3.4), too late to await; the hash is what they are read from."""

    learned: int
    ham: int
    spam: int


class RspamdServer:
    """rspamd and the DNS server it asks, started together; ``started_in`` is rspamd's start time."""

    def __init__(self, workdir: Path, redis_url: str | None) -> None:
        require_tool("rspamd")
        self.dns = DnsServer(workdir / "dns")
        self.dns.txt("_nothing.example.org", "v=none")
        redis = None
        if redis_url is not None:
            redis = redis_url.removeprefix("redis://").split("/", 1)[0]
        (workdir / "dns").mkdir(parents=True, exist_ok=True)
        self.local = LocalRspamd(
            workdir / "rspamd",
            default_cache_dir(),
            redis=redis,
            redis_db=1,
            dns=self.dns.address,
            rules_lua=TEST_RULES,
        )
        self.started_in = 0.0
        self.redis_url = redis_url

    @property
    def url(self) -> str:
        return self.local.url

    @property
    def controller_url(self) -> str:
        return self.local.controller_url

    @property
    def controller_password(self) -> str:
        """What the controller asks for (the tests' learning goes through it, as a deployed host's does)."""
        return self.local.controller_password

    def learns(self) -> Learns:
        """How much rspamd has learned so far (``Learns``)."""
        import httpx
        import redis

        stat = httpx.get(
            f"{self.controller_url}/stat", headers={"Password": self.controller_password}, timeout=10, trust_env=False
        )
        stat.raise_for_status()
        assert self.redis_url is not None, "learning needs the Redis that keeps Bayes"
        bayes = self.redis_url.rsplit("/", 1)[0] + "/1"  # rspamd's database (the URL's own wins over db=)
        with redis.Redis.from_url(bayes) as client:
            counts = client.hgetall("RS")
        return Learns(
            int(stat.json()["learned"]), int(counts.get(b"learns_ham", 0)), int(counts.get(b"learns_spam", 0))
        )

    def start(self) -> None:
        if self.dns.proc is None:
            self.dns.start()
        began = time.monotonic()
        self.local.start(timeout=240)  # a cold cache compiles for a while on a busy machine
        self.started_in = time.monotonic() - began

    def stop(self) -> None:
        self.local.stop()

    def close(self) -> None:
        self.local.stop()
        self.dns.stop()
