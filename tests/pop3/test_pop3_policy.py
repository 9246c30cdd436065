"""POP3 settings and the LOGIN-DELAY store (memory and real Redis)."""

from __future__ import annotations

import secrets

import pytest

from sealmail.errors import InvalidInput
from sealmail.pop3.policy import LoginDelay
from sealmail.pop3.server import policy_from
from sealmail.settings import load_settings


def test_settings_give_the_policy(tmp_path) -> None:
    env = tmp_path / "sealmail.env"
    env.write_text(
        "SEALMAIL_POP3_DELETE_MODE=trash\nSEALMAIL_POP3_EXPIRE=7\nSEALMAIL_POP3_LOGIN_DELAY=300\n"
        "SEALMAIL_POP3_IDLE_TIMEOUT=900\n"
    )
    policy = policy_from(load_settings(env, use_environ=False))
    assert (policy.delete_mode, policy.expire, policy.login_delay, policy.idle_timeout) == ("trash", "7", 300, 900)
    env.write_text("SEALMAIL_POP3_EXPIRE=NEVER\n")
    assert policy_from(load_settings(env, use_environ=False)).expire == "NEVER"


@pytest.mark.parametrize(
    "line",
    [
        "SEALMAIL_POP3_EXPIRE=-1",
        "SEALMAIL_POP3_EXPIRE=soon",
        "SEALMAIL_POP3_DELETE_MODE=shred",
        "SEALMAIL_POP3_IDLE_TIMEOUT=60",  # RFC 1939 §3: an autologout timer of at least 10 minutes
        "SEALMAIL_POP3_LOGIN_DELAY=-5",
    ],
)
def test_bad_pop3_settings_are_refused(tmp_path, line: str) -> None:
    env = tmp_path / "sealmail.env"
    env.write_text(line + "\n")
    with pytest.raises(InvalidInput, match="SEALMAIL_POP3_"):
        load_settings(env, use_environ=False)


@pytest.fixture(params=["memory", "redis"])
async def redis_client(request, redis_url):
    if request.param == "memory":
        yield None
        return
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def test_login_delay(redis_client) -> None:
    """RFC 2449 §6.5: a second login within the delay is refused; other accounts are not affected."""
    delay = LoginDelay(redis_client, 60, prefix=f"test:{secrets.token_hex(4)}")
    assert await delay.admit("alias-1")
    assert not await delay.admit("alias-1")
    assert await delay.admit("alias-2")
    assert await LoginDelay(redis_client, 0).admit("alias-1")  # 0: no delay at all
