"""A DAV client's cached sign-in ends when its password changes in another process (issue 16, item 7).

DAV clients send Basic credentials with every request (RFC 7617) and the server keeps the unlocked
account for a while; a revocation over Redis drops that entry at once, so the old password gets
401 on the next request instead of working until the periodic re-check.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from davserver import start_server
from pydantic import SecretStr


def test_the_old_password_gets_401_right_after_a_change_in_another_process(
    tmp_path: Path, redis_url: str, sealmail_bin: str
) -> None:
    for dav in start_server(tmp_path, redis_url=SecretStr(redis_url)):
        address = "alice@example.test"
        password = dav.accounts[address]
        with dav.client(address) as client:
            assert client.request("PROPFIND", dav.principal(address), headers={"Depth": "0"}).status_code == 207
            env = {
                **{k: v for k, v in os.environ.items() if not k.startswith("SEALMAIL_")},
                "SEALMAIL_REDIS_URL": redis_url,
                "SEALMAIL_ARGON2_TIME_COST": "1",
                "SEALMAIL_ARGON2_MEMORY_KIB": "8192",
                "SEALMAIL_DATA_DIR": str(dav.settings.data_dir),
            }
            subprocess.run(
                [sealmail_bin, "alias", "passwd", "--current", address],
                input=password + "\n",
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            )
            deadline = time.monotonic() + 3
            status = 207
            while time.monotonic() < deadline:
                status = client.request("PROPFIND", dav.principal(address), headers={"Depth": "0"}).status_code
                if status == 401:
                    break
                time.sleep(0.1)
            assert status == 401
