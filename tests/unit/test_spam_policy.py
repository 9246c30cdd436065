"""rspamd's answer parsed, and what each action means for the MX and for submission (``sealmail.spam``),
without rspamd.

Codes: RFC 5321 §4.2.2 (550 refused, 451 try again later), RFC 3463 §3.8 X.7.1 (refused by policy).
"""

from __future__ import annotations

import pytest

from sealmail.spam import outbound, policy
from sealmail.spam.rspamd import RspamdUnavailable, ScanRequest, parse_result


def _answer(action: str, score: float = 0.0, **extra: object) -> dict:
    return {
        "action": action,
        "score": score,
        "required_score": 15.0,
        "symbols": {"B_SYM": {"name": "B_SYM", "score": 1.5}, "A_SYM": {"name": "A_SYM", "score": 7.0}},
        **extra,
    }


def test_reject_is_550_5_7_1_with_rspamds_message_made_one_printable_line() -> None:
    """RFC 5321 §4.2.2 550 / RFC 3463 5.7.1; a CR LF in rspamd's text must not start a second reply."""
    answer = _answer("reject", 20, messages={"smtp_message": "Spam\r\n250 2.0.0 ok\x00 \u00e9t\u00e9"})
    decision = policy.decide(parse_result(answer))
    assert decision.reply == "550 5.7.1 Spam 250 2.0.0 ok t"
    assert "\r" not in decision.reply
    assert "\n" not in decision.reply


def test_reject_without_a_message_has_a_default_text() -> None:
    assert policy.decide(parse_result(_answer("reject", 20))).reply == "550 5.7.1 Message rejected as spam"


@pytest.mark.parametrize("action", ["soft reject", "greylist"])
def test_soft_reject_and_greylist_are_451_4_7_1(action: str) -> None:
    """RFC 5321 §4.2.2 451: the sender keeps the message and retries; RFC 3463 4.7.1."""
    decision = policy.decide(parse_result(_answer(action, 5)))
    assert decision.reply is not None
    assert decision.reply.startswith("451 4.7.1 ")
    assert not decision.junk


@pytest.mark.parametrize("action", ["add header", "rewrite subject"])
def test_add_header_and_rewrite_subject_go_to_junk_with_the_score(action: str) -> None:
    decision = policy.decide(parse_result(_answer(action, 8.5)))
    assert decision.reply is None
    assert decision.junk
    head = decision.header.decode()
    assert head.startswith("X-Spam-Status: Yes, score=8.50 required=15.00\r\nX-Spam-Score: 8.50\r\n")
    assert "X-Spam-Symbols: A_SYM(7.00), B_SYM(1.50)\r\n" in head  # highest first


def test_no_action_is_inbox() -> None:
    decision = policy.decide(parse_result(_answer("no action", 1.0)))
    assert decision.reply is None
    assert not decision.junk
    assert decision.header.startswith(b"X-Spam-Status: No, score=1.00")


def test_long_symbol_lists_are_folded_and_odd_names_left_out() -> None:
    symbols = {f"SYMBOL_NUMBER_{i}": {"score": 0.1} for i in range(40)}
    symbols["BAD\r\nX-Injected: 1"] = {"score": 9.0}
    decision = policy.decide(parse_result({"action": "no action", "score": 1, "symbols": symbols}))
    lines = decision.header.decode().split("\r\n")
    assert all(len(line) <= 78 for line in lines)
    assert "X-Injected" not in decision.header.decode()


def test_unavailable_accepts_marked_or_tempfails() -> None:
    accept = policy.unavailable("accept")
    assert accept.reply is None
    assert accept.for_domain("any.test").header == b"X-Spam-Status: unchecked\r\n"
    assert policy.unavailable("tempfail").reply == "451 4.7.1 Spam filter unavailable, try again later"


@pytest.mark.parametrize("answer", [[], {"score": 1}, {"action": "reject"}, {"action": "x", "score": "7"}])
def test_an_answer_without_action_or_score_counts_as_unavailable(answer: object) -> None:
    with pytest.raises(RspamdUnavailable):
        parse_result(answer)


# ---- per-domain thresholds (issue 21) -------------------------------------------------------------
T = policy.Thresholds


@pytest.mark.parametrize(
    ("action", "score", "thresholds", "band"),
    [
        # no thresholds, or none set: rspamd's action
        ("add header", 8, None, "junk"),
        ("add header", 8, T(), "junk"),
        ("reject", 16, None, "reject"),
        ("greylist", 4.5, None, "defer"),
        ("no action", 1, None, "inbox"),
        # reject lowered: refused on the score, whatever rspamd did
        ("add header", 8, T(reject=5), "reject"),
        ("add header", 8, T(reject=8), "reject"),  # at the threshold counts (rspamd's own rule)
        ("add header", 8, T(reject=9), "junk"),  # below it: rspamd's junk band still applies
        ("no action", 4.9, T(reject=5), "inbox"),
        # reject raised: what rspamd refused goes to Junk (past rspamd's add header too) ...
        ("reject", 16, T(reject=20), "junk"),
        ("reject", 25, T(reject=20), "reject"),
        # ... unless the junk threshold is raised above the score as well
        ("reject", 16, T(reject=30, junk=20), "inbox"),
        # junk raised or lowered
        ("add header", 8, T(junk=20), "inbox"),
        ("no action", 3, T(junk=2.5), "junk"),
        ("no action", 3, T(junk=3.5), "inbox"),
        # defer band of the domain's own
        ("add header", 8, T(defer=7), "defer"),
        ("add header", 8, T(defer=7, reject=7.5), "reject"),
        ("add header", 6.5, T(defer=7, junk=6), "junk"),
        ("greylist", 4.5, T(defer=10), "inbox"),
    ],
)
def test_domain_thresholds_decide_the_band_on_rspamds_score(action, score, thresholds, band) -> None:
    assert policy.band(parse_result(_answer(action, score)), thresholds) == band


def test_an_answer_rspamd_forced_keeps_its_action_whatever_the_domain_says() -> None:
    """GTUBE and settings rules come back ``is_skipped``: the score did not decide, the thresholds cannot either."""
    gtube = parse_result(_answer("reject", 15, is_skipped=True, messages={"smtp_message": "Gtube pattern"}))
    assert policy.band(gtube, T(reject=900, junk=800)) == "reject"
    assert policy.decide(gtube, T(reject=900)).reply == "550 5.7.1 Gtube pattern"


def test_a_domain_threshold_refusal_has_our_text_and_its_required_score_in_the_header() -> None:
    result = parse_result(_answer("add header", 8, messages={"smtp_message": "from a module"}))
    assert policy.decide(result, T(reject=5)).reply == "550 5.7.1 Message rejected as spam"
    assert policy.decide(result, T(defer=5)).reply == "451 4.7.1 Try again later"
    head = policy.decide(result, T(reject=12)).header
    assert head.startswith(b"X-Spam-Status: Yes, score=8.00 required=12.00\r\n")


@pytest.mark.parametrize(
    ("domains", "reply", "junk"),
    [
        # RFC 5321 §4.2.5: one reply for all recipients. Refused only when every domain refuses ...
        ({"a.test": T(reject=5), "b.test": T(reject=6)}, "550 5.7.1 Message rejected as spam", {}),
        # ... deferred when none takes it and one defers ...
        ({"a.test": T(reject=5), "b.test": T(defer=7)}, "451 4.7.1 Try again later", {}),
        # ... else accepted; a domain that would have refused or deferred gets it in Junk.
        ({"a.test": T(reject=5), "b.test": T(junk=20)}, None, {"a.test": True, "b.test": False}),
        ({"a.test": T(defer=5), "b.test": None}, None, {"a.test": True, "b.test": True}),
        ({"a.test": None, "b.test": T(junk=20)}, None, {"a.test": True, "b.test": False}),
    ],
)
def test_recipients_in_several_domains(domains, reply, junk) -> None:
    result = parse_result(_answer("add header", 8))
    spam = policy.decide_message(result, domains)
    assert spam.reply == reply
    assert {name: spam.for_domain(name).junk for name in junk} == junk
    for name, filed in junk.items():
        assert spam.for_domain(name).header.startswith(b"X-Spam-Status: Yes" if filed else b"X-Spam-Status: No")


def test_statistics_count_symbols_that_moved_the_score_and_every_outcome_once() -> None:
    from datetime import UTC, datetime

    from sealmail.spam.stats import SpamTally

    answer = _answer("add header", 8)
    answer["symbols"] |= {"ARC_NA": {"score": 0.0}, "BAD.NAME": {"score": 3.0}}
    junk = policy.decide_message(parse_result(answer), {"a.test": None})
    assert sorted(junk.symbols) == ["A_SYM", "B_SYM"]
    gtube = policy.decide_message(
        parse_result(_answer("reject", 15, is_skipped=True, symbols={"GTUBE": {"score": 0}})), {}
    )
    tally = SpamTally()
    day = datetime(2026, 3, 1, 23, 0, tzinfo=UTC)
    for spam in (junk, gtube, policy.unavailable("accept"), policy.unavailable("tempfail"), policy.OFF):
        tally.note(spam, day)
    ((when, outcomes, symbols),) = tally.take()
    assert when == day.date()
    assert outcomes == {"scanned": 2, "junk": 1, "rejected": 1, "unchecked": 2, "deferred": 1}
    assert symbols == {"A_SYM": 1, "B_SYM": 1, "GTUBE": 1}
    assert tally.take() == []


def test_a_senders_own_spam_fields_are_cut_and_nothing_else() -> None:
    head = (
        b"Received: x\r\nX-Spam-Status: No\r\nSubject: s\r\nx-spam-flag: NO\r\n\tfolded\r\n"
        b"X-Spam-Checker: kept\r\n\r\nX-Spam-Status: in the body\r\n"
    )
    cut = policy.spam_fields_cut(head)
    assert cut is not None
    start, resume = cut
    assert start + head[resume:] == (
        b"Received: x\r\nSubject: s\r\nX-Spam-Checker: kept\r\n\r\nX-Spam-Status: in the body\r\n"
    )
    assert policy.spam_fields_cut(b"Subject: s\r\n\r\nbody\r\n") is None


def test_the_envelope_goes_as_rspamds_headers() -> None:
    request = ScanRequest(
        ip="192.0.2.1", helo="mail.example.org", mail_from="", rcpt=["a@example.test", "b@example.test"], queue_id="q1"
    )
    headers = request.headers()
    assert ("From", "<>") in headers
    assert [v for k, v in headers if k == "Rcpt"] == ["<a@example.test>", "<b@example.test>"]
    assert "Hostname" not in dict(headers)  # unknown: rspamd resolves the PTR itself
    assert all(k != "User" for k, _ in headers)
    assert ("User", "alice") in ScanRequest("::1", "h", "a@b.test", ["c@d.test"], "q", user="alice").headers()


# ---- submission's rules (``spam.outbound``) ---------------------------------------------------------


def test_outbound_reject_is_550_5_7_1_and_soft_reject_451_4_7_1() -> None:
    """The same codes as the MX (RFC 5321 §4.2.2, RFC 3463 X.7.1), rspamd's text made one line."""
    rejected = outbound.decide(parse_result(_answer("reject", 20, messages={"smtp_message": "Spam\r\nmore"})))
    assert (rejected.reply, rejected.status) == ("550 5.7.1 Spam more", "reject")
    assert outbound.decide(parse_result(_answer("reject", 20))).reply == "550 5.7.1 Message refused as spam"
    for action in ("soft reject", "greylist"):
        deferred = outbound.decide(parse_result(_answer(action, 5)))
        assert deferred.reply is not None
        assert deferred.reply.startswith("451 4.7.1 ")


@pytest.mark.parametrize("action", ["add header", "rewrite subject"])
def test_outbound_add_header_is_sent_flagged_without_headers(action: str) -> None:
    decision = outbound.decide(parse_result(_answer(action, 8.5)))
    assert (decision.reply, decision.status, decision.score) == (None, outbound.FLAGGED, 8.5)
    assert (decision.junk, decision.header) == (False, b"")


def test_outbound_unavailable_sends_unchecked_or_tempfails() -> None:
    assert outbound.unavailable("accept").reply is None
    assert outbound.unavailable("tempfail").reply == "451 4.7.1 Spam filter unavailable, try again later"


def test_an_smtputf8_envelope_goes_as_ascii_or_not_at_all() -> None:
    """rspamd scores 8-bit octets in its request headers as BROKEN_HEADERS (8 points): an IDN domain
    goes as its A-label (RFC 5890 §2.3.2.1), an address with a non-ASCII local part stays out."""
    request = ScanRequest(
        ip="192.0.2.1",
        helo="mail.example.org",
        mail_from="ana@universitéxyz.fr",
        rcpt=["rémi@universitéxyz.fr", "b@universitéxyz.fr"],
        queue_id="q1",
    )
    headers = request.headers()
    assert ("From", "<ana@xn--universitxyz-jeb.fr>") in headers
    assert [v for k, v in headers if k == "Rcpt"] == ["<b@xn--universitxyz-jeb.fr>"]
    assert all(v.isascii() for _, v in headers)
