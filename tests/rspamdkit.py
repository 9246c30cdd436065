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

    @property
    def url(self) -> str:
        return self.local.url

    @property
    def controller_url(self) -> str:
        return self.local.controller_url

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
