"""Services behind the web admin and the API: DNS verdicts, admin two-factor, tokens, sessions, chart."""

from __future__ import annotations

from datetime import date

import pyotp
import pytest

from sealmail.config.sqlite import SQLiteConfigStore
from sealmail.errors import AlreadyExists, InvalidInput
from sealmail.services import admins, dnscheck, tokens
from sealmail.services.credentials import AuthenticationFailed
from sealmail.services.dashboard import SERIES, Day
from sealmail.services.dnsrecords import DnsRecord
from sealmail.web.charts import traffic_svg
from sealmail.web.sessions import MemorySessions, Session


@pytest.fixture
def store(settings):
    s = SQLiteConfigStore(settings.config_db_path)
    yield s
    s.close()


# ---- DNS verdicts -------------------------------------------------------------------------------------
def _lookup(zone: dict[tuple[str, str], list[str] | str]):
    async def lookup(name: str, rdtype: str) -> list[str]:
        found = zone.get((name, rdtype), [])
        if found == "TEMP":
            raise dnscheck.DnsLookupError("timed out")
        return list(found)

    return lookup


@pytest.mark.parametrize(
    ("found", "verdict"),
    [
        ([], "missing"),
        (["v=spf1 mx -all"], "pass"),
        (["v=spf1 mx include:_spf.example.org ~all"], "pass"),
        (["v=spf1 a -all"], "wrong"),
        (["v=spf1 mx -all", "v=spf1 -all"], "wrong"),  # RFC 7208 §4.5: two records are an error
        (["google-site-verification=x"], "missing"),
    ],
)
def test_spf_verdicts(found, verdict) -> None:
    assert dnscheck.judge_txt("v=spf1 mx -all", found)[0] == verdict


def test_dkim_compares_the_key_and_sts_the_id() -> None:
    expected = "v=DKIM1; k=rsa; p=MIIBIjAN"
    assert dnscheck.judge_txt(expected, ["v=DKIM1; k=rsa; p=MIIB IjAN"])[0] == "pass"  # spaces inside p= are fine
    assert dnscheck.judge_txt(expected, ["v=DKIM1; k=rsa; p=OTHER"])[0] == "wrong"
    assert dnscheck.judge_txt("v=STSv1; id=abc", ["v=STSv1; id=old"])[0] == "wrong"
    assert dnscheck.judge_txt("v=DMARC1; p=quarantine", ["v=DMARC1; p=none"])[0] == "pass"  # the owner's choice


async def test_targets_cnames_by_address_and_lookup_errors() -> None:
    zone = {
        ("d.test", "MX"): ["10 mail.d.test.", "20 backup.other.test."],
        ("_imaps._tcp.d.test", "SRV"): ["0 1 143 mail.d.test."],
        ("autoconfig.d.test", "A"): ["192.0.2.1"],
        ("mail.d.test", "A"): ["192.0.2.1"],
        ("mta-sts.d.test", "A"): ["198.51.100.9"],
        ("_dmarc.d.test", "TXT"): "TEMP",
    }
    records = [
        DnsRecord("d.test", "MX", "mail.d.test.", "", 10),
        DnsRecord("_imaps._tcp.d.test", "SRV", "0 1 993 mail.d.test.", ""),
        DnsRecord("autoconfig.d.test", "CNAME", "mail.d.test.", ""),
        DnsRecord("mta-sts.d.test", "CNAME", "mail.d.test.", ""),
        DnsRecord("_dmarc.d.test", "TXT", "v=DMARC1; p=quarantine", ""),
    ]
    checks = await dnscheck.check_records(_lookup(zone), records)
    assert [c.status for c in checks] == ["pass", "wrong", "pass", "wrong", "error"]
    assert checks[2].note == "address records instead of a CNAME"
    assert checks[4].note == "could not ask DNS: timed out"


# ---- admin accounts -----------------------------------------------------------------------------------
def test_first_admin_only_once_and_sign_in(store, settings) -> None:
    admin = admins.create_admin(store, settings, "Root@Example.test", "long enough pw", first=True)
    with pytest.raises(AlreadyExists):
        admins.create_admin(store, settings, "two@example.test", "long enough pw", first=True)
    assert admins.authenticate(store, settings, "Root@Example.test", "long enough pw").id == admin.id
    for email, password in [("root@example.test", "wrong password"), ("nobody@example.test", "long enough pw")]:
        with pytest.raises(AuthenticationFailed):
            admins.authenticate(store, settings, email, password)
    assert "long enough pw" not in store.get_admin(admin.id).password_hash


def test_totp_enrolment_and_recovery_codes(store, settings) -> None:
    admin = admins.create_admin(store, settings, "root@example.test", "long enough pw")
    secret = admins.new_totp_secret()
    with pytest.raises(InvalidInput):
        admins.enable_totp(store, admin.id, secret, "000000")
    codes = admins.enable_totp(store, admin.id, secret, pyotp.TOTP(secret).now())
    assert len(set(codes)) == admins.RECOVERY_CODES
    assert admins.check_second_factor(store, admin.id, pyotp.TOTP(secret).now()).method == "totp"
    used = admins.check_second_factor(store, admin.id, codes[3].upper())
    assert (used.method, used.remaining_codes) == ("recovery", 9)
    with pytest.raises(AuthenticationFailed):
        admins.check_second_factor(store, admin.id, codes[3])
    fresh = admins.regenerate_recovery_codes(store, admin.id)
    with pytest.raises(AuthenticationFailed):
        admins.check_second_factor(store, admin.id, codes[0])
    assert admins.check_second_factor(store, admin.id, fresh[0]).remaining_codes == 9
    admins.disable_totp(store, admin.id)
    with pytest.raises(AuthenticationFailed):
        admins.check_second_factor(store, admin.id, pyotp.TOTP(secret).now())


def test_basic_auth_pair_is_generated_once(settings) -> None:
    user, password, made = admins.basic_auth_credentials(settings)
    assert made
    assert len(password) >= 20
    assert admins.basic_auth_credentials(settings) == (user, password, False)
    assert oct((settings.data_dir / admins.BASIC_AUTH_FILE).stat().st_mode & 0o777) == "0o600"


# ---- tokens -------------------------------------------------------------------------------------------
def test_tokens(store) -> None:
    token, secret = tokens.create_token(store, "ci", ["logs:read", "aliases:read", "logs:read"])
    assert token.scopes == ["aliases:read", "logs:read"]
    assert tokens.authenticate(store, secret).id == token.id
    for bad in ("", "sm_nope", secret[:-1], secret.replace("sm_", "xx_")):
        with pytest.raises(AuthenticationFailed):
            tokens.authenticate(store, bad)
    tokens.revoke_token(store, token.id)
    with pytest.raises(AuthenticationFailed):
        tokens.authenticate(store, secret)
    with pytest.raises(InvalidInput):
        tokens.create_token(store, " ", ["logs:read"])
    with pytest.raises(InvalidInput):
        tokens.create_token(store, "x", [])


# ---- sessions and chart -------------------------------------------------------------------------------
async def test_memory_sessions_rotate_and_single_use_keys() -> None:
    store = MemorySessions()
    session = Session(None, None)
    token = session.csrf_token()
    first = session.sid
    await store.save(first, session.data, 60)
    session.rotate()
    assert session.sid != first
    assert session.old_sid == first
    assert session.csrf_token() != token
    assert await store.first_use("totp:1:42", 60)
    assert not await store.first_use("totp:1:42", 60)


def test_chart_is_plain_svg() -> None:
    days = [Day(date(2026, 3, d), dict.fromkeys(SERIES, d % 3)) for d in range(1, 31)]
    svg = str(traffic_svg(days))
    assert svg.startswith("<svg")
    assert svg.endswith("</svg>")
    assert svg.count("<polyline") == len(SERIES)
    assert "<script" not in svg
    assert "style=" not in svg
    assert "http://" not in svg.replace("http://www.w3.org/2000/svg", "")
