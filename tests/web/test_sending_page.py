"""The web admin's Sending page: who is at an hourly submission limit, and the switch that blocks an
alias from sending — against a real submission server sharing the web component's Redis."""

from __future__ import annotations

import re
import smtplib
import ssl

import pytest

from sealmail.config.models import LogQuery
from sealmail.services import credentials

from support import ComponentThread

ANN = "ann@example.test"


@pytest.fixture
def web_settings(web_settings) -> object:
    return web_settings.model_copy(
        update={"submission_port": 0, "submission_tls_port": 0, "submission_max_messages_per_hour": 1}
    )


@pytest.fixture
def submission(web_settings):
    running = ComponentThread("smtp", web_settings)
    yield running
    running.stop()


def _mail_from(submission, certs, password: str) -> tuple[int, str]:
    """Sign in as ann and send one message; the first refusal's code and text."""
    context = ssl.create_default_context(cafile=str(certs.ca_cert))
    with smtplib.SMTP_SSL("127.0.0.1", submission.ports["submission_tls"], context=context, timeout=30) as c:
        c.login(ANN, password)
        code, text = c.mail(ANN)
        if code != 250:
            return code, text.decode()
        c.rcpt("bob@b.test")
        code, text = c.data(f"From: {ANN}\r\nTo: bob@b.test\r\nSubject: hi\r\n\r\nHello.\r\n".encode())
        return code, text.decode()


def _row(page: str) -> str:
    match = re.search(
        r'<tr><th scope="row"><a href="/admin/aliases/[^"]+">ann@example.test</a></th>.*?</tr>', page, re.S
    )
    assert match, page
    return match[0]


def test_the_page_lists_the_alias_at_its_limit_and_blocks_it(signed_in, store, web_settings, certs, submission) -> None:
    signed_in.post("/admin/domains", {"name": "example.test"})
    signed_in.post("/admin/aliases", {"address": ANN, "recipients": "elsewhere@example.org", "enabled": "on"})
    password = credentials.set_password(store, web_settings, ANN)
    assert "No alias is at its limit or blocked." in signed_in.get("/admin/sending").text

    assert _mail_from(submission, certs, password)[0] == 250
    code, text = _mail_from(submission, certs, password)
    assert code == 451
    when = re.search(r"try again after (\d\d:\d\d UTC)$", text)
    assert when, text

    row = _row(signed_in.get("/admin/sending").text)
    assert "<td>1 of 1</td>" in row  # messages this hour, of the limit
    assert f"{when[1]}</time></td>" in row  # the time the SMTP reply gave
    assert "Block sending" in row

    alias = store.find_alias("example.test", "exact", "ann")
    assert signed_in.post(f"/admin/sending/{alias.id}/block").status_code == 303
    code, text = _mail_from(submission, certs, password)
    assert (code, text) == (550, "5.7.1 This account may not send mail; contact your administrator")
    row = _row(signed_in.get("/admin/sending").text)
    assert "blocked" in row
    assert "Allow sending" in row
    assert "Blocked from sending" in signed_in.get(f"/admin/aliases/{alias.id}").text
    (entry,) = [e for e in store.query_logs(LogQuery(kind="audit")).entries if e.status == "alias.sending"]
    assert (entry.address, entry.detail.endswith(": blocked")) == (ANN, True)

    signed_in.post(f"/admin/sending/{alias.id}/allow")
    assert store.get_alias(alias.id).sending_blocked is False
    assert _mail_from(submission, certs, password)[0] == 451  # allowed again, still at its hourly limit


def test_an_alias_is_blocked_by_its_address(signed_in, store, web_settings, certs, submission) -> None:
    signed_in.post("/admin/domains", {"name": "example.test"})
    signed_in.post("/admin/aliases", {"address": ANN, "recipients": "elsewhere@example.org", "enabled": "on"})
    password = credentials.set_password(store, web_settings, ANN)
    signed_in.post("/admin/sending/block", {"address": "nobody@example.test"})
    assert "does not exist" in signed_in.get("/admin/sending").text
    signed_in.post("/admin/sending/block", {"address": "Ann@Example.Test"})
    assert _mail_from(submission, certs, password)[0] == 550
    assert "<td>0 of 1</td>" in _row(signed_in.get("/admin/sending").text)


def test_the_api_lists_the_same_and_switches_sending(store, web_settings, certs, submission, api) -> None:
    """``GET /v1/sending`` (aliases:read) is the page's list; ``PATCH /v1/aliases/{id}`` with
    ``sending_blocked`` is its switch, recorded in the audit log."""
    import httpx

    from sealmail.services import aliases, domains, tokens

    domains.add_domain(store, "example.test", web_settings)
    alias = aliases.add_alias(store, ANN, recipients=["elsewhere@example.org"])
    password = credentials.set_password(store, web_settings, ANN)
    _, secret = tokens.create_token(store, "ops", ["aliases:read", "aliases:write"])
    assert _mail_from(submission, certs, password)[0] == 250
    with httpx.Client(
        base_url=f"https://127.0.0.1:{api.ports['api']}",
        verify=ssl.create_default_context(cafile=str(certs.ca_cert)),
        headers={"authorization": f"Bearer {secret}"},
        timeout=30,
    ) as client:
        (row,) = client.get("/v1/sending").json()
        assert (row["alias_id"], row["address"], row["messages"], row["blocked"]) == (alias.id, ANN, 1, False)
        assert row["free_at"] is not None
        changed = client.patch(f"/v1/aliases/{alias.id}", json={"sending_blocked": True})
        assert changed.status_code == 200, changed.text
        assert changed.json()["sending_blocked"] is True
        assert _mail_from(submission, certs, password)[0] == 550
        (row,) = client.get("/v1/sending").json()
        assert row["blocked"] is True
    audit = [e.status for e in store.query_logs(LogQuery(kind="audit")).entries]
    assert audit.count("alias.sending") == 1
    assert "alias.update" not in audit  # only the switch was asked for
