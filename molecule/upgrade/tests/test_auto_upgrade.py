"""Automatic upgrades: only signed commits are installed (an unsigned one on top is refused and
nothing is built); a version that fails its health check is rolled back and the host keeps
serving; a good version goes in, built by the unprivileged build user and owned by root; a second
run finds nothing to do."""

from __future__ import annotations

import json
import time

UPGRADE = "/usr/local/sbin/sealmail-auto-upgrade"
CURRENT = "/opt/sealmail/current"

# The project's app as the host has it, in a git repository with branches after the first commit,
# every commit signed by the release key the allowed signers name, except the one on "unsigned".
MAKE_REPO = r"""
set -e
rm -rf /srv/work /srv/sealmail.git /root/release-key /root/release-key.pub
ssh-keygen -q -t ed25519 -N '' -C release -f /root/release-key
# The operator's allowed signers, as the role writes them from upgrade__allowed_signers.
echo "release@example.test namespaces=\"git\" $(cat /root/release-key.pub)" > /etc/sealmail/upgrade-allowed-signers
mkdir -p /srv/work/app
cp -a /opt/sealmail/src/. /srv/work/app/
rm -rf /srv/work/app/build /srv/work/app/*.egg-info
cd /srv/work
git() { command git -c user.name=test -c user.email=release@example.test -c gpg.format=ssh \
    -c user.signingkey=/root/release-key -c commit.gpgsign=true "$@"; }
git init -q -b good
git add -A
git commit -qm "the installed version"
sed -i 's/^version = "\([^"]*\)"/version = "\1.post1"/' app/pyproject.toml
git commit -qam "a new version"
git checkout -q -b broken
printf '\nraise SystemExit("this version cannot serve IMAP")\n' >> app/sealmail/imap/server.py
git commit -qam "a version whose IMAP cannot start"
git checkout -q -b unsigned good
sed -i 's/^version = "\([^"]*\)"/version = "\1.post2"/' app/pyproject.toml
git -c commit.gpgsign=false commit -qam "an unsigned commit on top of a signed one"
git checkout -q good
command git clone -q --bare /srv/work /srv/sealmail.git
chown -R sealmail-build: /srv/sealmail.git  # the build user fetches it (git refuses others' repositories)
"""


def _components(host) -> dict[str, list[int]]:
    """The component units installed here; other sealmail-* units (backup, upgrade, the app's
    scheduled runs) are not components: the app says which names are."""
    known = {c["name"] for c in json.loads(host.check_output("/usr/local/bin/sealmail components --json"))}
    ports = {}
    for unit in host.check_output("systemctl list-unit-files 'sealmail-*.service' --no-legend | awk '{print $1}'").split():
        name = unit.removeprefix("sealmail-").removesuffix(".service")
        if name not in known:
            continue
        ready = json.loads(host.file(f"/var/lib/sealmail/run/{name}.json").content_string)
        ports[name] = [int(p) for p in ready.get("ports", {}).values() if p]
    return ports


def _serving(host) -> None:
    for name, ports in _components(host).items():
        assert host.service(f"sealmail-{name}").is_running, name
        for port in ports:
            assert host.run(f"timeout 5 bash -c 'exec 3<>/dev/tcp/127.0.0.1/{port}'").rc == 0, (name, port)


def _wait_done(host, unit: str, timeout: float = 900) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = host.run(f"systemctl show -p ActiveState --value {unit}").stdout.strip()
        if state in ("inactive", "failed"):
            return host.run(f"systemctl show -p Result --value {unit}").stdout.strip()
        time.sleep(2)
    raise AssertionError(f"{unit} did not finish")


def test_broken_version_is_rolled_back_and_a_good_one_goes_in(sealmail_host):
    host = sealmail_host
    assert host.run(MAKE_REPO).rc == 0
    before = host.check_output(f"readlink -f {CURRENT}")
    version = host.check_output(f"{CURRENT}/bin/sealmail --version")
    _serving(host)

    # An unsigned commit: refused before anything is built, loudly, with a non-zero exit.
    unsigned = host.run(f"UPGRADE_REF=unsigned {UPGRADE}")
    assert unsigned.rc == 2, unsigned.stdout + unsigned.stderr
    log = host.run("journalctl -t sealmail-upgrade -p err -o cat --no-pager").stdout
    assert "REFUSED to upgrade" in log
    assert "has no good signature by an allowed signer" in log
    assert host.run("ls /opt/sealmail/releases | grep -q .").rc != 0  # nothing built
    assert host.check_output(f"readlink -f {CURRENT}") == before

    # The broken version, as the timer would run it; the host serves while it builds.
    host.run("systemctl reset-failed upgrade-broken.service")
    assert host.run(f"systemd-run --unit=upgrade-broken --setenv=UPGRADE_REF=broken {UPGRADE}").rc == 0
    deadline = time.monotonic() + 300
    while "building" not in host.run("journalctl -t sealmail-upgrade -o cat --no-pager").stdout:
        assert time.monotonic() < deadline, "the upgrade never started building"
        time.sleep(1)
    _serving(host)  # during the build
    assert _wait_done(host, "upgrade-broken.service") == "exit-code"
    log = host.run("journalctl -t sealmail-upgrade -p err -o cat --no-pager").stdout
    assert "failed its health check (imap did not report it is listening" in log
    assert "rolled back to venv, which is serving again" in log
    assert host.check_output(f"readlink -f {CURRENT}") == before
    assert host.check_output(f"{CURRENT}/bin/sealmail --version") == version
    _serving(host)

    # The good version.
    good = host.run(f"UPGRADE_REF=good {UPGRADE}")
    assert good.rc == 0, good.stdout + good.stderr
    assert "every component is listening" in good.stdout
    release = host.check_output(f"readlink -f {CURRENT}")
    assert release.startswith("/opt/sealmail/releases/")
    commit = host.check_output("git -c safe.directory=/srv/sealmail.git -C /srv/sealmail.git rev-parse good")
    log = host.run("journalctl -t sealmail-upgrade -o cat --no-pager").stdout
    assert f"verified {commit}: signed commit (release@example.test" in log
    assert "as sealmail-build beside" in log
    # Built by the build user, then handed to root: nothing the build user or the service may change.
    assert host.check_output(f"find {release} ! -user root | wc -l") == "0"
    assert host.check_output(f"find {release} -perm /022 ! -type l | wc -l") == "0"
    assert host.file(f"{release}/.sealmail-commit").content_string.strip() == commit
    assert host.check_output(f"{CURRENT}/bin/sealmail --version").endswith(".post1")
    _serving(host)

    again = host.run(f"UPGRADE_REF=good {UPGRADE}")
    assert again.rc == 0
    assert "up to date" in again.stdout


def test_the_build_user_has_no_login_and_owns_nothing_installed(sealmail_host):
    user = sealmail_host.user("sealmail-build")
    assert user.exists
    assert user.shell == "/usr/sbin/nologin"
    assert user.uid < 1000  # a system account
    assert sealmail_host.check_output("find /opt/sealmail /usr/local -user sealmail-build | wc -l") == "0"


def test_the_timer_is_nightly(sealmail_host):
    timer = sealmail_host.service("sealmail-upgrade.timer")
    assert timer.is_enabled
    assert timer.is_running
