"""The `sealmail` command through its real console script, as a user or a script would run it."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from mailgen import message
from privacyscan import Secrets, assert_no_secrets
from support import free_port

COMMANDS = [
    [],
    ["check-config"],
    ["domain"],
    ["domain", "add"],
    ["domain", "list"],
    ["domain", "rm"],
    ["dns-records"],
    ["host-names"],
    ["alias"],
    ["alias", "add"],
    ["alias", "list"],
    ["alias", "set"],
    ["alias", "rm"],
    ["alias", "passwd"],
    ["serve"],
    ["dev"],
    ["components"],
    ["webhook-secret"],
    ["status"],
    ["doctor"],
    ["token"],
    ["token", "add"],
    ["token", "list"],
    ["token", "revoke"],
    ["sieve"],
    ["sieve", "list"],
    ["sieve", "show"],
    ["sieve", "put"],
    ["sieve", "activate"],
    ["sieve", "deactivate"],
    ["sieve", "rename"],
    ["sieve", "rm"],
]


@pytest.fixture
def run(sealmail_bin, clean_env, tmp_path):
    env = {**clean_env, "SEALMAIL_ARGON2_TIME_COST": "1", "SEALMAIL_ARGON2_MEMORY_KIB": "8192"}
    data_dir = tmp_path / "data"

    def run(*args: str, data: Path | None = data_dir, extra_env: dict | None = None) -> subprocess.CompletedProcess:
        argv = [sealmail_bin, *args]
        if data is not None:
            argv += ["--data-dir", str(data)]
        return subprocess.run(
            argv, env={**env, **(extra_env or {})}, capture_output=True, text=True, timeout=60, check=False
        )

    run.data_dir = data_dir
    run.bin = sealmail_bin
    run.env = env
    return run


def _json(result: subprocess.CompletedProcess):
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a) or "sealmail")
def test_every_command_has_help(sealmail_bin, args) -> None:
    result = subprocess.run([sealmail_bin, *args, "--help"], capture_output=True, text=True, check=False)
    assert result.returncode == 0
    assert "Usage: sealmail" in result.stdout


def test_domain_lifecycle_with_idn(run) -> None:
    added = _json(run("domain", "add", "Universitéxyz.fr", "--json"))
    assert added["name"] == "universitéxyz.fr"
    assert added["ascii"] == "xn--universitxyz-jeb.fr"
    duplicate = run("domain", "add", "xn--universitxyz-jeb.fr")
    assert duplicate.returncode == 1
    assert duplicate.stderr == "sealmail: error: domain universitéxyz.fr exists already\n"
    assert [d["name"] for d in _json(run("domain", "list", "--json"))] == ["universitéxyz.fr"]
    human = run("domain", "list")
    assert "universitéxyz.fr" in human.stdout
    assert "xn--universitxyz-jeb.fr" in human.stdout
    assert _json(run("domain", "rm", "universitéxyz.fr", "--json"))["removed"] == "universitéxyz.fr"
    assert _json(run("domain", "list", "--json")) == []


def test_domain_spam_thresholds_set_shown_and_cleared(run) -> None:
    """Issue 21: ``domain spam`` sets a domain's own thresholds, ``default`` or ``--clear`` gives the
    band back to rspamd; a bad value is one clear line and changes nothing."""
    run("domain", "add", "universitéxyz.fr")
    shown = _json(run("domain", "spam", "universitéxyz.fr", "--reject", "12", "--junk", "4.5", "--json"))
    assert shown["spam"] == {"reject": 12.0, "defer": None, "junk": 4.5}
    assert (
        run("domain", "spam", "xn--universitxyz-jeb.fr").stdout
        == "universitéxyz.fr: reject 12, defer rspamd, junk 4.5\n"
    )
    assert _json(run("domain", "list", "--json"))[0]["spam"]["reject"] == 12.0
    for args, says in (
        (["--junk", "13"], "the reject threshold (12) must be above the junk threshold (13)"),
        (["--defer", "0"], "the defer threshold must be above 0 and at most 1000"),
    ):
        refused = run("domain", "spam", "universitéxyz.fr", *args)
        assert (refused.returncode, refused.stderr) == (1, f"sealmail: error: {says}\n")
    bad = run("domain", "spam", "universitéxyz.fr", "--reject", "lots")
    assert bad.returncode == 2
    assert "a score (such as 12 or 5.5) or 'default'" in bad.stderr
    assert _json(run("domain", "spam", "universitéxyz.fr", "--reject", "default", "--json"))["spam"] == {
        "reject": None,
        "defer": None,
        "junk": 4.5,
    }
    cleared = _json(run("domain", "spam", "universitéxyz.fr", "--clear", "--defer", "9", "--json"))
    assert cleared["spam"] == {"reject": None, "defer": 9.0, "junk": None}
    assert run("domain", "spam", "absent.test").returncode == 1


def test_bad_input_is_one_clear_line_and_no_traceback(run) -> None:
    for args in (
        ["domain", "add", "bad_domain"],
        ["domain", "rm", "absent.test"],
        ["alias", "add", "x@absent.test"],
        ["alias", "add", "no-at-sign"],
        ["alias", "passwd", "ghost@absent.test"],
    ):
        result = run(*args)
        assert result.returncode == 1, args
        assert result.stderr.startswith("sealmail: error: "), result.stderr
        assert result.stderr.count("\n") == 1, result.stderr
        assert "Traceback" not in result.stderr


def test_usage_errors_exit_2(run) -> None:
    result = run("alias", "add", "a@b.test", "--disabled-reply", "shout")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    result = run("serve", "nonsense")
    assert result.returncode == 2


def test_alias_lifecycle(run) -> None:
    run("domain", "add", "example.test")
    made = _json(run("alias", "add", "Rémi@example.test", "--quota", "2G", "--json"))
    assert made["address"] == "rémi@example.test"
    assert (made["storage"], made["enabled"], made["quota"]) == (True, True, 2 * 1024**3)
    forward = _json(
        run("alias", "add", "*@example.test", "--to", "Bob@Bücher.example", "--to", "https://hooks.test/in", "--json")
    )
    assert forward["recipients"] == ["Bob@xn--bcher-kva.example", "https://hooks.test/in"]
    assert forward["storage"] is False
    regex = run("alias", "add", "/^(a)\\1$/@example.test", "--to", "x@y.test")
    assert regex.returncode == 1
    assert "RE2" in regex.stderr
    nothing = run("alias", "add", "void@example.test", "--no-storage")
    assert nothing.returncode == 1
    assert "lost" in nothing.stderr
    # A webhook into the server's own network is refused (RFC 6890 §2.2.2: 127.0.0.0/8 is not global).
    inward = run("alias", "add", "hook@example.test", "--to", "https://127.0.0.1:9000/in")
    assert inward.returncode == 1
    assert "loopback" in inward.stderr
    assert "webhook_allow_private" in inward.stderr
    allowed = run(
        "alias",
        "add",
        "hook@example.test",
        "--to",
        "http://127.0.0.1:9000/in",
        "--json",
        extra_env={"SEALMAIL_WEBHOOK_ALLOW_PRIVATE": "true"},
    )
    assert _json(allowed)["recipients"] == ["http://127.0.0.1:9000/in"]
    assert run("alias", "rm", "hook@example.test").returncode == 0

    changed = _json(run("alias", "set", "rémi@example.test", "--disable", "--disabled-reply", "drop", "--json"))
    assert (changed["enabled"], changed["disabled_reply"]) == (False, "drop")
    listed = _json(run("alias", "list", "example.test", "--json"))
    assert [a["address"] for a in listed] == ["rémi@example.test", "*@example.test"]
    assert "disabled:drop" in run("alias", "list").stdout
    blocked = _json(run("alias", "set", "rémi@example.test", "--block-sending", "--json"))
    assert blocked["sending_blocked"] is True
    assert _json(run("alias", "set", "rémi@example.test", "--allow-sending", "--json"))["sending_blocked"] is False

    assert _json(run("alias", "rm", "*@example.test", "--json"))["removed"] == "*@example.test"
    assert [a["address"] for a in _json(run("alias", "list", "--json"))] == ["rémi@example.test"]


def test_sieve_scripts_of_an_idn_address_are_checked_stored_activated_and_removed(run, tmp_path) -> None:
    """RFC 5804 §2.6's rule at the CLI too: a script that does not compile is refused with its line."""
    run("domain", "add", "universitéxyz.fr")
    run("alias", "add", "rémi@universitéxyz.fr")
    script = tmp_path / "filters.sieve"
    script.write_text('require "fileinto";\nif header :contains "subject" "réunion" { fileinto "Réunions"; }\n')
    stored = run("sieve", "put", "rémi@universitéxyz.fr", "filtres", str(script), "--activate")
    assert stored.returncode == 0, stored.stderr
    broken = tmp_path / "broken.sieve"
    broken.write_text('require "fileinto";\n\nfileinto "x"\nkeep;\n')
    refused = run("sieve", "put", "rémi@universitéxyz.fr", "broken", str(broken))
    assert refused.returncode == 1
    assert "line 4" in refused.stderr, refused.stderr
    listed = _json(run("sieve", "list", "rémi@universitéxyz.fr", "--json"))
    assert [(s["name"], s["active"]) for s in listed] == [("filtres", True)]
    shown = run("sieve", "show", "rémi@universitéxyz.fr", "filtres")
    assert shown.stdout == script.read_text()
    assert run("sieve", "rm", "rémi@universitéxyz.fr", "filtres").returncode == 1, "the active script stays"
    assert run("sieve", "deactivate", "rémi@universitéxyz.fr").returncode == 0
    assert run("sieve", "rename", "rémi@universitéxyz.fr", "filtres", "old").returncode == 0
    assert run("sieve", "rm", "rémi@universitéxyz.fr", "old").returncode == 0
    assert _json(run("sieve", "list", "rémi@universitéxyz.fr", "--json")) == []


def test_passwd_prints_once_and_keeps_only_an_argon2id_verifier(run) -> None:
    run("domain", "add", "example.test")
    run("alias", "add", "fwd@example.test", "--to", "someone@elsewhere.test")
    password = _json(run("alias", "passwd", "fwd@example.test", "--json"))["password"]
    assert len(password) >= 20
    db = sqlite3.connect(run.data_dir / "config.sqlite")
    (verifier,) = db.execute("SELECT password_hash FROM alias_credentials").fetchone()
    assert verifier.startswith("$argon2id$")
    assert PasswordHasher().verify(verifier, password)
    # Not in the config store, nor in any other file under the data directory, at any offset.
    assert_no_secrets(run.data_dir, Secrets().password("password", password))
    second = _json(run("alias", "passwd", "fwd@example.test", "--json"))["password"]
    assert_no_secrets(run.data_dir, Secrets().password("first password", password).password("second", second))
    assert second != password
    (verifier,) = db.execute("SELECT password_hash FROM alias_credentials").fetchone()
    with pytest.raises(Exception, match="does not match"):
        PasswordHasher().verify(verifier, password)


def _in_process(run):
    """The data directory the CLI wrote, opened by this process (to deliver and read mail)."""
    from sealmail.config.sqlite import SQLiteConfigStore
    from sealmail.settings import Settings

    settings = Settings(data_dir=run.data_dir, argon2_time_cost=1, argon2_memory_kib=8192)
    return SQLiteConfigStore(settings.config_db_path), settings


def _deliver(run, address: str, raw: bytes) -> None:
    """The MX's path: seal to the alias's public key into its spool."""
    from sealmail.store.mailstore import MailStore

    config, settings = _in_process(run)
    try:
        name, _, domain = address.partition("@")
        credential = config.get_credential(config.find_alias(domain, "exact", name).id)
        MailStore(settings.data_dir).deliver(credential.mailbox_id, credential.public_key, raw)
    finally:
        config.close()


def _login_and_read(run, address: str, password: str):
    """What IMAP does at login: unlock, drain the spool, read INBOX. Returns (keys, messages)."""
    from sealmail.services import credentials
    from sealmail.store.mailstore import MailStore

    config, settings = _in_process(run)
    try:
        unlocked = credentials.unlock(config, settings, address, password)
    finally:
        config.close()
    store = MailStore(settings.data_dir)
    box = store.open_sync(unlocked.mailbox_id, unlocked.secrets.mailbox_key)
    try:
        box.drain(store.spool(unlocked.mailbox_id), unlocked.secrets.private_key)
        return unlocked, [box.raw(i.body_id) for i in box.messages("INBOX")]
    finally:
        box.close()


def test_passwd_of_a_mailbox_keeps_mail_only_with_the_current_password_or_recovery_key(run) -> None:
    run("domain", "add", "example.test")
    first = _json(run("alias", "add", "box@example.test", "--password", "--json"))["password"]
    assert len(list((run.data_dir / "mailboxes").glob("*.sqlite"))) == 1
    # One message drained into the encrypted mailbox (the mailbox key), one left sealed in the spool
    # (the private key): both must survive every password change below.
    drained = message(1, subject="Subject-Heron-Drained-4820", body="Body-Heron-Lute-1046\r\n")
    sealed = message(2, subject="Subject-Heron-Sealed-9375", body="Body-Heron-Sitar-5521\r\n")
    _deliver(run, "box@example.test", drained)
    original, got = _login_and_read(run, "box@example.test", first)
    assert got == [drained]
    _deliver(run, "box@example.test", sealed)

    refused = run("alias", "passwd", "box@example.test")
    assert refused.returncode == 1
    assert "current password or the recovery key" in refused.stderr

    wrong = subprocess.run(
        [*_argv(run, "alias", "passwd", "box@example.test", "--current")],
        input="not-it\n",
        check=False,
        **_io(run),
    )
    assert wrong.returncode == 1
    assert wrong.stderr == "sealmail: error: authentication failed\n"

    second = _json(
        subprocess.run(
            [*_argv(run, "alias", "passwd", "box@example.test", "--current", "--json")],
            input=first + "\n",
            check=False,
            **_io(run),
        )
    )["password"]
    recovery = _json(
        subprocess.run(
            [*_argv(run, "alias", "recovery-key", "box@example.test", "--json")],
            input=second + "\n",
            check=False,
            **_io(run),
        )
    )["recovery_key"]
    third = _json(
        subprocess.run(
            [*_argv(run, "alias", "passwd", "box@example.test", "--recovery", "--json")],
            input=recovery + "\n",
            check=False,
            **_io(run),
        )
    )["password"]
    assert len({first, second, third}) == 3
    recovered, got = _login_and_read(run, "box@example.test", third)
    assert got == [drained, sealed]  # the old mail, read with the password set through the recovery key
    assert recovered.secrets.mailbox_key == original.secrets.mailbox_key
    assert recovered.secrets.private_key == original.secrets.private_key
    assert recovered.mailbox_id == original.mailbox_id
    secrets = Secrets().unlocked("box", recovered).password("recovery key", recovery)
    for n, password in enumerate((first, second, third)):
        secrets.password(f"password {n + 1}", password)
    for marker in ("Subject-Heron-Drained-4820", "Subject-Heron-Sealed-9375", "Body-Heron-Lute", "Body-Heron-Sitar"):
        secrets.text("message text", marker)
    assert_no_secrets(run.data_dir, secrets)

    reset = _json(run("alias", "passwd", "box@example.test", "--reset-mailbox", "--json"))
    assert reset["password"] != third
    assert len(list((run.data_dir / "mailboxes").glob("*.sqlite"))) == 1  # the old file is gone, a new one made

    run("alias", "rm", "box@example.test")
    assert list((run.data_dir / "mailboxes").glob("*.sqlite")) == []


@pytest.mark.parametrize("how", ["--current", "--recovery", "--reset-mailbox"])
def test_passwd_revokes_the_users_own_api_tokens_and_no_others(run, tmp_path, how) -> None:
    """Issue 22: a new password set from the command line ends the tokens the alias's user made for
    /v1/me, as it does from the web and the API (tests/web/test_self_tokens_revoked.py); an
    administrator's token and another user's stay good. The revocation is one audit entry."""
    import ssl

    import httpx

    from sealmail.config.models import LogQuery
    from sealmail.services import aliases as alias_service
    from sealmail.services import credentials, selfservice
    from sealmail.services.eventlog import Actor
    from sealmail.tls.devca import ensure_dev_certificates

    from support import ComponentThread

    run("domain", "add", "universitéxyz.fr")
    password = _json(run("alias", "add", "rémi@universitéxyz.fr", "--password", "--json"))["password"]
    other = _json(run("alias", "add", "bob@universitéxyz.fr", "--password", "--json"))["password"]
    admin = _json(run("token", "add", "ci", "--scope", "aliases:read", "--json"))["token"]
    config, settings = _in_process(run)
    certs = ensure_dev_certificates(tmp_path / "tls")
    api = ComponentThread(
        "api",
        settings.model_copy(
            update={
                "tls_cert_file": certs.cert,
                "tls_key_file": certs.key,
                "api_port": 0,
                "bind_addresses": ["127.0.0.1"],
            }
        ),
    )
    try:
        made = {}
        for address, name in (("rémi@universitéxyz.fr", "laptop"), ("bob@universitéxyz.fr", "theirs")):
            credentials.unlock(config, settings, address, password if name == "laptop" else other)
            me = selfservice.member(config, alias_service.get_alias(config, address).id)
            made[name] = selfservice.create_token(config, me, name, Actor("test", "t", "-"))[1]
        secret = None
        if how == "--recovery":
            secret = credentials.add_recovery_key(config, settings, "rémi@universitéxyz.fr", password)
        elif how == "--current":
            secret = password
        with httpx.Client(
            base_url=f"https://127.0.0.1:{api.ports['api']}",
            verify=ssl.create_default_context(cafile=str(certs.ca_cert)),
            timeout=60,
        ) as client:

            def status(token: str, path: str = "/v1/me") -> int:
                return client.get(path, headers={"authorization": f"Bearer {token}"}).status_code

            assert status(made["laptop"]) == 200
            done = subprocess.run(
                [*_argv(run, "alias", "passwd", "rémi@universitéxyz.fr", how, "--json")],
                input=(secret + "\n") if secret else None,
                check=False,
                **_io(run),
            )
            new = _json(done)["password"]
            assert status(made["laptop"]) == 401
            assert status(made["theirs"]) == 200
            assert status(admin, "/v1/aliases") == 200
        entries = config.query_logs(LogQuery(kind="audit", limit=50)).entries
        (entry,) = [e for e in entries if e.status == "alias.tokens-revoke"]
        assert entry.component == "cli"
        assert "1 API token" in entry.detail
        assert "laptop" in entry.detail
        for e in entries:
            for hidden in (password, new, made["laptop"], admin, secret or password):
                assert hidden not in e.detail
    finally:
        api.stop()
        config.close()


def _argv(run, *args: str) -> list[str]:
    return [run.bin, *args, "--data-dir", str(run.data_dir)]


def _io(run) -> dict:
    return {"env": run.env, "capture_output": True, "text": True, "timeout": 60}


def test_data_dir_from_environment_and_env_file(run, tmp_path) -> None:
    by_env = tmp_path / "by-env"
    run("domain", "add", "env.test", data=None, extra_env={"SEALMAIL_DATA_DIR": str(by_env)})
    assert (by_env / "config.sqlite").exists()
    env_file = tmp_path / "sealmail.env"
    by_file = tmp_path / "by-file"
    env_file.write_text(f"SEALMAIL_DATA_DIR={by_file}\n")
    run("domain", "add", "file.test", "--env-file", str(env_file), data=None)
    listed = _json(run("domain", "list", "--json", data=None, extra_env={"SEALMAIL_ENV_FILE": str(env_file)}))
    assert [d["name"] for d in listed] == ["file.test"]


def test_check_config(run, tmp_path) -> None:
    good = tmp_path / "good.env"
    good.write_text("DOMAIN=example.test\nEMAIL=ops@example.test\nSEALMAIL_MX_PORT=25\n")
    result = run("check-config", "--env-file", str(good), data=None)
    assert result.returncode == 0, result.stderr
    bad = tmp_path / "bad.env"
    bad.write_text("DOMAIN=not a domain\nSEALMAIL_MX_PORT=-1\nSEALMAIL_NOPE=1\n")
    result = run("check-config", "--env-file", str(bad), data=None)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 3
    assert all(line.startswith("sealmail: invalid setting: ") for line in lines)
    as_json = run("check-config", "--env-file", str(bad), "--json", data=None)
    assert as_json.returncode == 1
    assert len(json.loads(as_json.stdout)["errors"]) == 3


def test_serve_refuses_a_component_this_version_lacks(run) -> None:
    from sealmail import components

    missing = [c for c in components.ALL if c not in components.available()]
    if not missing:
        pytest.skip("every component exists")
    result = run("serve", missing[0])
    assert result.returncode == 1
    assert "not part of this version" in result.stderr


def test_second_terminal_sees_what_the_first_wrote(run) -> None:
    """Commands share the data directory: no state is held in a process."""
    run("domain", "add", "a.test")
    run("alias", "add", "x@a.test")
    assert [a["address"] for a in _json(run("alias", "list", "--json"))] == ["x@a.test"]


def test_components_lists_what_this_version_serves(run) -> None:
    from sealmail import components

    listed = _json(run("components", "--json", data=None))
    assert [c["name"] for c in listed] == list(components.ALL)
    assert {c["name"] for c in listed if c["available"]} == set(components.available())
    assert next(c for c in listed if c["name"] == "imap")["ports"] == {"imaps": "imaps_port", "imap": "imap_port"}


def test_two_factor_off_for_a_user_who_lost_the_app(run) -> None:
    """The self-service area's second factor is sealed with the mailbox key; an administrator needs
    neither to turn it off."""
    import pyotp

    from sealmail.config.models import LogQuery
    from sealmail.services import aliases as alias_service
    from sealmail.services import credentials, selfservice, totp
    from sealmail.services.eventlog import Actor

    run("domain", "add", "universitéxyz.fr")
    password = _json(run("alias", "add", "rémi@universitéxyz.fr", "--password", "--json"))["password"]
    config, settings = _in_process(run)
    try:
        unlocked = credentials.unlock(config, settings, "rémi@universitéxyz.fr", password)
        secret = totp.new_secret()
        selfservice.enable_totp(config, unlocked, secret, pyotp.TOTP(secret).now(), Actor("test", "t", "-"))
        alias_id = alias_service.get_alias(config, "rémi@universitéxyz.fr").id
        assert config.get_credential(alias_id).totp_secret is not None
        done = _json(run("alias", "two-factor-off", "rémi@universitéxyz.fr", "--json"))
        assert done == {"address": "rémi@universitéxyz.fr", "two_factor": False}
        assert config.get_credential(alias_id).totp_secret is None
        assert config.get_credential(alias_id).password_hash == unlocked.credential.password_hash
        # The same service as the web admin and the API: one audit entry, under the command line's name.
        (entry,) = [e for e in config.query_logs(LogQuery("audit")).entries if e.status == "alias.two-factor-off"]
        assert entry.component == "cli"
        assert entry.detail.startswith("by command line (")
        assert _json(run("alias", "two-factor-off", "rémi@universitéxyz.fr", "--json"))["two_factor"] is False
        again = [e for e in config.query_logs(LogQuery("audit")).entries if e.status == "alias.two-factor-off"]
        assert again == [entry]  # off already: nothing more to record
        missing = run("alias", "two-factor-off", "nobody@universitéxyz.fr")
        assert missing.returncode == 1
        assert "does not exist" in missing.stderr
    finally:
        config.close()


def test_components_report_the_ports_the_settings_choose(run) -> None:
    """Deployment opens the firewall from this list: the numbers are the settings', not a copy of the defaults."""
    listed = _json(run("components", "--json", extra_env={"SEALMAIL_CALDAV_PORT": "8443"}))
    dav = next(c for c in listed if c["name"] == "dav")["listeners"]
    assert {(item["key"], item["port"], item["tls"], item["public"]) for item in dav} == {
        ("caldav", 8443, "implicit", True),
        ("carddav", 6000, "implicit", True),
    }
    store = next(c for c in listed if c["name"] == "store")["listeners"]
    assert [(item["port"], item["public"]) for item in store] == [(3456, False)]
    mx = next(c for c in listed if c["name"] == "mx")["listeners"]
    assert [(item["key"], item["port"], item["tls"]) for item in mx] == [("mx", 25, "starttls")]


def test_components_say_which_run_here_and_status_speaks_of_those_only(run) -> None:
    """The deployment writes its placement (SEALMAIL_COMPONENTS): ``here`` follows it, status lists only
    those, and a name that is no component is refused with the list of the real ones."""
    placed = {"SEALMAIL_COMPONENTS": "mx, smtp"}
    listed = _json(run("components", "--json", extra_env=placed))
    assert {c["name"] for c in listed if c["here"]} == {"mx", "smtp"}
    assert all(c["here"] for c in _json(run("components", "--json")) if c["available"])
    assert set(_json(run("status", "--json", extra_env=placed))["components"]) == {"mx", "smtp"}
    wrong = run("components", extra_env={"SEALMAIL_COMPONENTS": "mx,imapd"})
    assert wrong.returncode != 0
    assert "unknown component(s) imapd" in wrong.stderr
    assert "mx, smtp, imap" in wrong.stderr


def test_webhook_secret_is_made_once_and_kept(run) -> None:
    first = _json(run("webhook-secret", "--json"))["webhook_secret"]
    assert len(first) >= 40
    assert _json(run("webhook-secret", "--json"))["webhook_secret"] == first
    assert oct((run.data_dir / "webhook.key").stat().st_mode & 0o777) == "0o600"


def test_dns_records_of_a_domain(run) -> None:
    run("domain", "add", "universitéxyz.fr")
    keys = sorted(p.name for p in (run.data_dir / "dkim" / "xn--universitxyz-jeb.fr").iterdir())
    assert keys == ["ed25519.key", "rsa.key"]
    records = {(r["name"], r["type"]): r for r in _json(run("dns-records", "universitéxyz.fr", "--json"))}
    assert records[("xn--universitxyz-jeb.fr", "MX")]["priority"] == 10
    assert records[("xn--universitxyz-jeb.fr", "TXT")]["value"] == "v=spf1 mx -all"
    assert records[("rsa1._domainkey.xn--universitxyz-jeb.fr", "TXT")]["value"].startswith("v=DKIM1; k=rsa; p=MII")
    assert records[("ed1._domainkey.xn--universitxyz-jeb.fr", "TXT")]["value"].startswith("v=DKIM1; k=ed25519; p=")
    assert ("_dmarc.xn--universitxyz-jeb.fr", "TXT") in records
    assert ("_imaps._tcp.xn--universitxyz-jeb.fr", "SRV") in records
    before = (run.data_dir / "dkim" / "xn--universitxyz-jeb.fr" / "rsa.key").read_bytes()
    run("domain", "rm", "universitéxyz.fr")
    run("domain", "add", "universitéxyz.fr")
    assert (run.data_dir / "dkim" / "xn--universitxyz-jeb.fr" / "rsa.key").read_bytes() == before  # never rotated


def test_dns_records_of_every_domain_name_their_zone(run) -> None:
    """`dns-records --all --json` is the whole table deployment publishes; the keys are the app's own."""
    for name in ("universitéxyz.fr", "example.test"):
        run("domain", "add", name)
    env = {"SEALMAIL_PUBLIC_IPV6": "2001:db8::25", "SEALMAIL_MTA_STS_MODE": "testing", "DOMAIN": "universitéxyz.fr"}
    records = _json(run("dns-records", "--all", "--json", extra_env=env))
    assert {r["zone"] for r in records} == {"xn--universitxyz-jeb.fr", "example.test"}
    assert all(r["name"] == r["zone"] or r["name"].endswith("." + r["zone"]) for r in records)
    aaaa = [(r["name"], r["value"]) for r in records if r["type"] == "AAAA"]
    assert ("mail.xn--universitxyz-jeb.fr", "2001:db8::25") in aaaa
    # RFC 7208 §2.3: the HELO name's own SPF record, in the table a person reads too
    helo = [r for r in records if (r["name"], r["type"]) == ("mail.xn--universitxyz-jeb.fr", "TXT")]
    assert [(r["value"], r["zone"]) for r in helo] == [("v=spf1 a -all", "xn--universitxyz-jeb.fr")]
    table = run("dns-records", "universitéxyz.fr", extra_env=env).stdout.splitlines()
    assert [line.split() for line in table if line.startswith("mail.xn--universitxyz-jeb.fr ")] == [
        ["mail.xn--universitxyz-jeb.fr", "AAAA", "2001:db8::25"],
        ["mail.xn--universitxyz-jeb.fr", "TXT", "v=spf1", "a", "-all"],
    ]
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(
        (run.data_dir / "dkim" / "example.test" / "ed25519.key").read_bytes(), password=None
    )
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    import base64

    dkim = next(r for r in records if r["name"] == "ed1._domainkey.example.test")
    assert dkim["value"] == f"v=DKIM1; k=ed25519; p={base64.b64encode(raw).decode()}"
    refused = run("dns-records")
    assert refused.returncode != 0
    assert "--all" in refused.stderr
    names = _json(run("host-names", "--json", extra_env=env))
    assert names[:2] == ["mail.xn--universitxyz-jeb.fr", "xn--universitxyz-jeb.fr"]
    assert "mta-sts.example.test" in names


def test_status_explains_a_blocked_port_25(run) -> None:
    from sealmail.config.models import LogEntry
    from sealmail.config.sqlite import SQLiteConfigStore
    from sealmail.smtp.delivery import PORT_25_HINT

    run("domain", "add", "example.test")
    calm = _json(run("status", "--json"))
    assert calm["problems"] == []
    assert calm["domains"] == 1
    store = SQLiteConfigStore(run.data_dir / "config.sqlite")
    for n in range(3):
        store.append_log(
            LogEntry(
                "delivery",
                "jobs",
                "deferred",
                domain="example.test",
                address="a@example.test",
                peer=f"mx{n}",
                detail=f"to b@c.test: {PORT_25_HINT}",
            )
        )
    store.close()
    human = run("status")
    assert "probably blocks outbound port 25" in human.stdout


@pytest.mark.tool("rspamd", "dnsmasq", "redis-server")
def test_status_says_whether_rspamd_answers(run, rspamd) -> None:
    off = _json(run("status", "--json"))
    assert off["spam_filter"] is None
    assert "spam filter: off" in run("status").stdout
    up = _json(run("status", "--json", extra_env={"SEALMAIL_RSPAMD_URL": rspamd.url}))
    assert up["spam_filter"] == {"url": rspamd.url, "answers": True, "error": None, "when_unavailable": "accept"}
    assert up["problems"] == []
    gone = f"http://127.0.0.1:{free_port()}"
    down = _json(
        run("status", "--json", extra_env={"SEALMAIL_RSPAMD_URL": gone, "SEALMAIL_RSPAMD_UNAVAILABLE": "tempfail"})
    )
    assert down["spam_filter"]["answers"] is False
    assert down["problems"] == [
        f"rspamd at {gone} does not answer ({down['spam_filter']['error']}): messages are deferred (451 4.7.1) until it is back"
    ]
    assert "DOES NOT ANSWER" in run("status", extra_env={"SEALMAIL_RSPAMD_URL": gone}).stdout


def test_api_tokens(run) -> None:
    made = _json(run("token", "add", "deploy", "--scope", "aliases:read", "--scope", "logs:read", "--json"))
    assert made["token"].startswith("sm_")
    assert made["scopes"] == ["aliases:read", "logs:read"]
    listed = _json(run("token", "list", "--json"))
    assert [t["name"] for t in listed] == ["deploy"]
    assert made["token"] not in json.dumps(listed)
    assert _json(run("token", "revoke", made["id"], "--json"))["revoked_at"]
    bad = run("token", "add", "x", "--scope", "root")
    assert bad.returncode == 2


@pytest.mark.parametrize("processes", ["1", "2"])
def test_serve_names_a_listed_address_the_host_lacks(run, processes) -> None:
    """An address the operator listed must be served: 2001:db8::1 (RFC 3849, on no host) stops the MX with
    one line naming the address and port, as a host without IPv6 does for an explicit ``::``."""
    extra = {
        "SEALMAIL_BIND_ADDRESSES": "127.0.0.1,2001:db8::1",
        "SEALMAIL_MX_PORT": "0",
        "SEALMAIL_MX_AUTH_WORKERS": "0",
        "SEALMAIL_MX_PROCESSES": processes,
    }
    result = run("serve", "mx", extra_env=extra)
    assert result.returncode == 1
    output = result.stdout + result.stderr
    assert "cannot start: cannot listen on [2001:db8::1]:" in output
    assert "Cannot assign requested address" in output
    assert "Traceback" not in output
