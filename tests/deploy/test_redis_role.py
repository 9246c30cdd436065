"""The redis role's memory policy keeps Sealmail's security state (issue 16, item 13)."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_the_role_never_evicts_keys() -> None:
    """Login lockout counters and single-use TOTP markers carry an expiry; any volatile-* (or allkeys-*)
    policy may evict them at the memory cap, which would reset a lockout or let a code be used twice."""
    defaults = yaml.safe_load((ROOT / "roles/redis/defaults/main.yml").read_text())
    assert defaults["redis__maxmemory_policy"] == "noeviction"
    spec = yaml.safe_load((ROOT / "roles/redis/meta/argument_specs.yml").read_text())
    option = spec["argument_specs"]["main"]["options"]["redis__maxmemory_policy"]
    assert option["default"] == "noeviction"
    template = (ROOT / "roles/redis/templates/etc/redis/redis.conf.j2").read_text()
    assert "maxmemory-policy {{ redis__maxmemory_policy }}" in template
