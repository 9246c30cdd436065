"""``sealmail upgrade-turn take|give``: one host of a deployment upgrades at a time.

Issue 19, rollouts: automatic upgrades follow the same order across hosts as playbooks/upgrade.yml
(drain, upgrade, health gate, re-admit — one host at a time). Each host's nightly upgrade takes
the turn (a lease in the shared Redis) before it drains and gives it back when it serves again.
Real CLI processes against a real Redis; each "host" is a ``--holder`` name.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time

import pytest


@pytest.fixture
def turn(sealmail_bin, clean_env, redis_url, tmp_path):
    import redis

    redis.Redis.from_url(redis_url).delete("sealmail:upgrade-turn")
    env = {**clean_env, "SEALMAIL_DATA_DIR": str(tmp_path / "data"), "SEALMAIL_REDIS_URL": redis_url}

    def run(*args: str, redis_env: dict[str, str] | None = None) -> tuple[int, dict | None, str]:
        out = subprocess.run(
            [sealmail_bin, "upgrade-turn", *args, "--json"],
            check=False,
            env=redis_env if redis_env is not None else env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        return out.returncode, (json.loads(out.stdout) if out.stdout.strip() else None), out.stderr

    run.plain_env = {k: v for k, v in env.items() if k != "SEALMAIL_REDIS_URL"}
    return run


def test_one_host_at_a_time_the_other_is_told_who_upgrades_and_waits(turn) -> None:
    code, taken, _ = turn("take", "--holder", "mx1")
    assert code == 0
    assert taken == {"taken": True, "holder": "mx1", "shared": True}
    code, _, err = turn("take", "--holder", "mx2")
    assert code == 75  # EX_TEMPFAIL: the caller tries again later
    assert "mx1 is upgrading now" in err
    assert turn("take", "--holder", "mx1")[0] == 0  # its own turn again: renewed, not refused
    code, given, _ = turn("give", "--holder", "mx2")
    assert given == {"given": False}  # another host's turn is never ended by us
    assert turn("take", "--holder", "mx2")[0] == 75

    # mx2 waits; mx1 gives the turn back meanwhile, and mx2 has it as soon as it is free.
    threading.Timer(1.0, lambda: turn("give", "--holder", "mx1")).start()
    started = time.monotonic()
    code, taken, err = turn("take", "--holder", "mx2", "--wait", "30")
    assert code == 0, err
    assert taken["holder"] == "mx2"
    assert time.monotonic() - started < 25


def test_a_host_that_dies_with_the_turn_frees_it_when_the_lease_ends(turn) -> None:
    assert turn("take", "--holder", "imap1", "--ttl", "8")[0] == 0
    started = time.monotonic()
    assert turn("take", "--holder", "imap2")[0] == 75
    time.sleep(max(0.0, 8.5 - (time.monotonic() - started)))
    code, taken, _ = turn("take", "--holder", "imap2")
    assert code == 0
    assert taken["holder"] == "imap2"


def test_a_single_host_without_redis_always_has_the_turn(turn) -> None:
    code, taken, _ = turn("take", redis_env=turn.plain_env)
    assert code == 0
    assert taken == {"taken": True, "holder": None, "shared": False}
    assert turn("give", redis_env=turn.plain_env)[1] == {"given": True}
