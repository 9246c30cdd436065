"""The one settings object: SEALMAIL_ variables, Forward Email's names, env files, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from sealmail.errors import InvalidInput
from sealmail.settings import Settings, load_settings, settings_to_env


def test_prefixed_environment(clean_env, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("SEALMAIL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SEALMAIL_MX_PORT", "2525")
    monkeypatch.setenv("SEALMAIL_LOG_LEVEL", "debug")
    settings = load_settings()
    assert (settings.data_dir, settings.mx_port, settings.log_level) == (tmp_path, 2525, "DEBUG")


def test_forward_email_names_are_accepted(clean_env, tmp_path) -> None:
    env = tmp_path / "fe.env"
    env.write_text(
        "DOMAIN=Universitéxyz.fr\nEMAIL=admin@example.com\nAUTH_BASIC_USERNAME=admin\n"
        "AUTH_BASIC_PASSWORD=s3cret-pass\nNODE_ENV=production\n"
    )
    settings = load_settings(env)
    assert settings.domain == "xn--universitxyz-jeb.fr"
    assert settings.email == "admin@example.com"
    assert settings.auth_basic_username == "admin"
    assert settings.auth_basic_password is not None
    assert settings.auth_basic_password.get_secret_value() == "s3cret-pass"
    assert "s3cret-pass" not in repr(settings)  # secrets never print
    assert settings.mail_hostname == "mail.xn--universitxyz-jeb.fr"


def test_prefixed_name_wins_over_compat_name(clean_env, monkeypatch) -> None:
    monkeypatch.setenv("DOMAIN", "compat.test")
    monkeypatch.setenv("SEALMAIL_DOMAIN", "prefixed.test")
    assert load_settings().domain == "prefixed.test"


def test_environment_overrides_env_file(clean_env, monkeypatch, tmp_path) -> None:
    env = tmp_path / "s.env"
    env.write_text("SEALMAIL_MX_PORT=2626\nSEALMAIL_IMAP_PORT=2143\n")
    monkeypatch.setenv("SEALMAIL_MX_PORT", "2727")
    settings = load_settings(env)
    assert (settings.mx_port, settings.imap_port) == (2727, 2143)


def test_every_invalid_field_gets_its_own_line(clean_env, tmp_path) -> None:
    env = tmp_path / "bad.env"
    env.write_text(
        "SEALMAIL_MX_PORT=abc\nSEALMAIL_IMAPS_PORT=70000\nDOMAIN=bad_domain\nSEALMAIL_LOG_LEVEL=loud\n"
        "SEALMAIL_DATADIR=/typo\n"
    )
    with pytest.raises(InvalidInput) as info:
        load_settings(env)
    lines = str(info.value).splitlines()
    assert len(lines) == 5
    assert any(line.startswith("SEALMAIL_MX_PORT: ") for line in lines)
    assert any(line.startswith("SEALMAIL_IMAPS_PORT: ") for line in lines)
    assert any(line.startswith("DOMAIN: invalid domain name") for line in lines)
    assert any(line.startswith("SEALMAIL_LOG_LEVEL: ") for line in lines)
    assert "SEALMAIL_DATADIR: unknown setting" in lines


def test_cross_field_rules(clean_env, tmp_path) -> None:
    env = tmp_path / "m.env"
    env.write_text("SEALMAIL_CONFIG_BACKEND=mongodb\nSEALMAIL_TLS_CERT_FILE=/etc/x.pem\n")
    with pytest.raises(InvalidInput) as info:
        load_settings(env)
    assert "SEALMAIL_MONGODB_URL is required" in str(info.value)


def test_replica_set_url_is_accepted(clean_env, tmp_path) -> None:
    env = tmp_path / "rs.env"
    env.write_text(
        "SEALMAIL_CONFIG_BACKEND=mongodb\n"
        "SEALMAIL_MONGODB_URL=mongodb://db1:27017,db2:27017,db3:27017/sealmail?replicaSet=rs0\n"
    )
    assert load_settings(env).config_backend == "mongodb"
    env.write_text("SEALMAIL_CONFIG_BACKEND=mongodb\nSEALMAIL_MONGODB_URL=http://nope\n")
    with pytest.raises(InvalidInput, match="SEALMAIL_MONGODB_URL: must start with mongodb://"):
        load_settings(env)


def test_missing_env_file(clean_env, tmp_path) -> None:
    with pytest.raises(InvalidInput, match="not found"):
        load_settings(tmp_path / "absent.env")


def test_file_only_mode_ignores_the_environment(clean_env, monkeypatch, tmp_path) -> None:
    env = tmp_path / "ok.env"
    env.write_text("SEALMAIL_MX_PORT=2525\n")
    monkeypatch.setenv("SEALMAIL_MX_PORT", "not-a-port")
    assert load_settings(env, use_environ=False).mx_port == 2525


def test_relative_data_dir_becomes_absolute(clean_env, monkeypatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_settings(data_dir=Path(".dev")).data_dir == tmp_path / ".dev"


def test_settings_survive_the_trip_through_a_child_environment(clean_env, monkeypatch, tmp_path) -> None:
    original = Settings(data_dir=tmp_path, mx_port=2525, domain="example.test", redis_url="redis://:pw@127.0.0.1:1/0")
    for name, value in settings_to_env(original).items():
        monkeypatch.setenv(name, value)
    assert load_settings() == original


# -- listening addresses (IPv4 and IPv6) ------------------------------------------------------------


def test_default_listens_on_ipv4_and_ipv6_unspecified_addresses(clean_env) -> None:
    """RFC 4291 §2.5.2: ``::`` is IPv6's unspecified address; with ``0.0.0.0`` both families are served."""
    assert load_settings().bind_addresses == ["0.0.0.0", "::"]  # noqa: S104


def test_bind_addresses_are_a_comma_separated_list(clean_env, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("SEALMAIL_BIND_ADDRESSES", " 192.0.2.7 , [2001:db8::7],localhost,2001:0db8::7 ")
    # Brackets and leading zeros are normalised; the repeat is dropped.
    assert load_settings().bind_addresses == ["192.0.2.7", "2001:db8::7", "localhost"]
    env = tmp_path / "b.env"
    env.write_text("SEALMAIL_BIND_ADDRESSES='127.0.0.1,::1'\n")
    monkeypatch.delenv("SEALMAIL_BIND_ADDRESSES")
    assert load_settings(env).bind_addresses == ["127.0.0.1", "::1"]


def test_old_single_bind_address_is_still_read(clean_env, monkeypatch, tmp_path) -> None:
    env = tmp_path / "old.env"
    env.write_text("SEALMAIL_BIND_ADDRESS=127.0.0.1\n")
    assert load_settings(env).bind_addresses == ["127.0.0.1"]  # not flagged as an unknown setting either
    assert load_settings(env, use_environ=False).bind_addresses == ["127.0.0.1"]
    # The new name wins where both are given.
    env.write_text("SEALMAIL_BIND_ADDRESS=127.0.0.1\nSEALMAIL_BIND_ADDRESSES=::1\n")
    assert load_settings(env).bind_addresses == ["::1"]
    monkeypatch.setenv("SEALMAIL_BIND_ADDRESS", "::1")
    assert load_settings().bind_addresses == ["::1"]


def test_invalid_bind_address_is_named_in_the_error(clean_env, tmp_path) -> None:
    env = tmp_path / "bad.env"
    env.write_text("SEALMAIL_BIND_ADDRESSES=0.0.0.0,mail.example.com\n")
    with pytest.raises(InvalidInput) as info:
        load_settings(env)
    assert str(info.value) == "SEALMAIL_BIND_ADDRESSES: 'mail.example.com' is not an IP address (nor localhost)"
    env.write_text("SEALMAIL_BIND_ADDRESSES=' , '\n")
    with pytest.raises(InvalidInput, match="SEALMAIL_BIND_ADDRESSES: name at least one address"):
        load_settings(env)
    env.write_text("SEALMAIL_BIND_ADDRESS=256.1.1.1\n")
    with pytest.raises(InvalidInput, match=r"SEALMAIL_BIND_ADDRESSES: '256\.1\.1\.1' is not an IP address"):
        load_settings(env)


def test_bind_addresses_survive_the_trip_through_a_child_environment(clean_env, monkeypatch) -> None:
    original = Settings(bind_addresses=["127.0.0.1", "::1"])
    for name, value in settings_to_env(original).items():
        monkeypatch.setenv(name, value)
    assert load_settings().bind_addresses == ["127.0.0.1", "::1"]


def test_redis_sentinel_settings_are_read_and_checked(clean_env, tmp_path) -> None:
    """Redis Sentinel: a list of host:port (IPv6 in brackets) and the master's name; the data nodes'
    password and database still come from SEALMAIL_REDIS_URL."""
    from sealmail.net.redisconn import connector

    env = tmp_path / "s.env"
    env.write_text(
        f"SEALMAIL_DATA_DIR={tmp_path}\nSEALMAIL_REDIS_URL=redis://:data-pw@sentinel/2\n"
        "SEALMAIL_REDIS_SENTINELS=10.0.0.1:26379, [fd00::3]:26379\nSEALMAIL_REDIS_SENTINEL_MASTER=mail\n"
        "SEALMAIL_REDIS_SENTINEL_PASSWORD=s-pw\n"
    )
    found = connector(load_settings(env))
    assert found is not None
    assert found.uses_sentinel
    assert found.sentinels == (("10.0.0.1", 26379), ("fd00::3", 26379))
    assert (found.master, found.sentinel_password) == ("mail", "s-pw")
    assert {k: found._data_kwargs()[k] for k in ("password", "db")} == {"password": "data-pw", "db": 2}
    env.write_text(f"SEALMAIL_DATA_DIR={tmp_path}\nSEALMAIL_REDIS_SENTINELS=10.0.0.1\n")
    with pytest.raises(InvalidInput, match=r"SEALMAIL_REDIS_SENTINELS: .*not host:port"):
        load_settings(env)
    env.write_text(f"SEALMAIL_DATA_DIR={tmp_path}\nSEALMAIL_REDIS_SENTINELS=10.0.0.1:26379\n")
    with pytest.raises(InvalidInput, match=r"SEALMAIL_REDIS_URL .*required"):
        load_settings(env)
    # Single host: no sentinels, the plain URL as before.
    plain = connector(Settings(data_dir=tmp_path, redis_url="redis://127.0.0.1:6379/0"))
    assert plain is not None
    assert not plain.uses_sentinel
