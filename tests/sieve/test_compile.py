"""Compiling: a script that is not valid Sieve is refused with the line to fix (ManageSieve's
CHECKSCRIPT answers with it, RFC 5804 §2.12), and a valid one never is."""

from __future__ import annotations

import pytest

from sealmail.sieve.compile import compile as compile_script
from sealmail.sieve.errors import SieveError
from sealmail.sieve.grammar import CAPABILITIES

ERRORS = [
    # syntax (RFC 5228 §8)
    pytest.param(
        'require "fileinto";\n\nif true {\n  fileinto "a" "b";\n}\n', 4, "unexpected", id="§8 an extra argument"
    ),
    pytest.param("keep;\nkeep\n", 2, '";" expected', id="§8 a missing semicolon at the end"),
    pytest.param("keep;\nkeep :foo;\n", 2, "unexpected token ':foo'", id="§8 an unknown tag"),
    pytest.param("keep;\ndiscard\nkeep;", 3, "'keep' found instead", id="§8 a missing semicolon"),
    pytest.param("if true {\n  keep;\n", 3, '"}" expected', id="§8 an unclosed block, found at the end"),
    pytest.param(
        'keep;\nif header :is "a" {\n keep;\n}', 2, "missing argument for command header", id="§8 a missing key list"
    ),
    pytest.param('keep;\n"text";\n', 2, "unexpected", id="§8 a string where a command goes"),
    pytest.param(
        "keep;\n# comment\nif true { keep; } else { discard; } else { keep; }",
        3,
        "must follow",
        id="§3.1 else after else",
    ),
    pytest.param("\n\nelsif true { keep; }", 3, "must follow", id="§3.1 elsif without if"),
    pytest.param(
        'keep;\nif header :is "Subject" "\xff" { keep; }'.encode("latin-1"),
        2,
        "",
        id="§2.4.2.4 a string that is not UTF-8",
    ),
    # semantics (RFC 5228 §3.2: unknown commands and missing requires are errors)
    pytest.param(
        'require "mailbox";\nkeep;\nif mailboxexists {\n  discard;\n}\n',
        3,
        "missing argument for command mailboxexists",
        id="§8 a test without its argument before a block (sievelib drops the if)",
    ),
    pytest.param(
        'require ["body"];\nif true {\n  if body :content "text" { }\n}',
        3,
        "missing argument for command body",
        id="§8 the same, nested",
    ),
    pytest.param("keep;\nif anyof (true)\n false { }", 3, "unexpected false", id="§8 a test after a test list"),
    pytest.param("keep;\n\nfrobnicate;\n", 3, "unknown command", id="§3.2 an unknown command"),
    pytest.param('keep;\nfileinto "x";\n', 2, "'fileinto' not loaded", id="§3.2 fileinto without require"),
    pytest.param(
        'require "fileinto";\nfileinto :copy "x";\n', 2, "'copy' not loaded", id="RFC 3894 :copy without require"
    ),
    pytest.param('require "enotify";\n', 1, "unsupported extension", id="§3.2 an extension we do not have"),
    pytest.param(
        'require ["fileinto",\n "x-frob"];\nkeep;', 2, "unsupported extension", id="§3.2 an unknown extension"
    ),
    pytest.param('keep;\nrequire "fileinto";\n', 2, "require must come before", id="§3.2 require after a command"),
    pytest.param('if true {\n require "fileinto";\n}\n', 2, "require must come before", id="§3.2 require in a block"),
    pytest.param(
        '\nif header :comparator "i;ascii-numeric" "X-Priority" "1" { keep; }',
        2,
        "needs require",
        id="§2.7.3 a comparator not required",
    ),
    pytest.param(
        'if header :comparator "i;frob" "Subject" "1" { keep; }', 1, "not supported", id="§2.7.3 an unknown comparator"
    ),
    pytest.param(
        'require "comparator-i;ascii-numeric";\nif header :contains :comparator "i;ascii-numeric" "X" "1" { keep; }',
        2,
        "cannot do :contains",
        id="RFC 4790 §9.1.1 i;ascii-numeric has no substring match",
    ),
    pytest.param(
        'if header :count "gt" "Received" "1" { keep; }',
        1,
        "'relational' not loaded",
        id="RFC 5231 :count without require",
    ),
    pytest.param(
        'require "relational";\nif header :count "over" "Received" "1" { keep; }',
        2,
        "bad value",
        id="RFC 5231 §4 an unknown relation",
    ),
    pytest.param(
        'require "regex";\n\nif header :regex "Subject" "(unclosed" { keep; }',
        3,
        "bad regular expression",
        id="regex that does not compile",
    ),
    pytest.param(
        'require "regex";\nif header :regex "Subject" "(a)\\\\1" { keep; }',
        2,
        "bad regular expression",
        id="regex with a backreference (RE2 has none)",
    ),
    pytest.param(
        'require "date";\nif date "Date" "fortnight" "1" { keep; }',
        2,
        "unknown date part",
        id="RFC 5260 §4.2 an unknown date part",
    ),
    pytest.param(
        'require "date";\nif date :zone "CET" "Date" "hour" "1" { keep; }',
        2,
        "+hhmm",
        id="RFC 5260 §4.1 a zone that is not +hhmm",
    ),
    pytest.param(
        'require ["date", "index"];\nif date :last "Date" "hour" "1" { keep; }',
        2,
        ":last needs :index",
        id="RFC 5260 §6 :last without :index",
    ),
    pytest.param(
        'require ["index"];\nif header :index 0 "Received" "x" { keep; }', 2, "counts from 1", id="RFC 5260 §6 :index 0"
    ),
    pytest.param(
        'if header :index 1 "Received" "x" { keep; }', 1, "'index' not loaded", id="RFC 5260 §6 :index without require"
    ),
    pytest.param(
        '\nredirect "not an address";',
        2,
        "not an email address",
        id="§4.2 redirect to something that is not an address",
    ),
    pytest.param(
        'require "variables";\nset "1" "x";', 2, "not a variable name", id="RFC 5229 §4 set of a match variable"
    ),
    pytest.param(
        'require "envelope";\nif envelope "auth" "x" { keep; }',
        2,
        "not supported",
        id="§5.4 an envelope part we do not have",
    ),
    pytest.param(
        'require "spamtest";\nif spamtest :percent "1" { keep; }',
        2,
        "'spamtestplus' not loaded",
        id="RFC 5235 §3.2 :percent needs spamtestplus",
    ),
    pytest.param('keep;\nereject "no";', 2, "'ereject' not loaded", id="RFC 5429 ereject without require"),
    pytest.param(
        'require "vacation";\nvacation :seconds 60 "away";',
        2,
        "'vacation-seconds' not loaded",
        id="RFC 6131 vacation-seconds is not offered",
    ),
    pytest.param(
        'require "vacation";\n\nvacation :from "nobody" "away";',
        3,
        "not an email address",
        id="RFC 5230 §4.4 :from that is not an address",
    ),
]


@pytest.mark.parametrize(("script", "line", "text"), ERRORS)
def test_an_invalid_script_is_refused_with_its_line(script: str | bytes, line: int, text: str) -> None:
    with pytest.raises(SieveError) as caught:
        compile_script(script)
    assert caught.value.line == line, caught.value
    assert text in caught.value.message
    assert str(caught.value).startswith(f"line {line}: ")


def test_nesting_beyond_the_limit_is_refused() -> None:
    """RFC 5228 §2.10.6: at least 15 levels must work; deeper than our limit is an error, not a stack overflow."""
    fifteen = "if true {\n" * 15 + "keep;\n" + "}\n" * 15
    compile_script(fifteen)
    deep = "if true {\n" * 40 + "keep;\n" + "}\n" * 40
    with pytest.raises(SieveError, match="nested deeper") as caught:
        compile_script(deep)
    assert caught.value.line == 33  # the 33rd if
    empty = "if true {" * 33 + "}" * 33  # the innermost block is empty
    with pytest.raises(SieveError, match="nested deeper") as caught:
        compile_script(empty)
    assert caught.value.line == 1
    nots = "if " + "not " * 40 + "true { keep; }"
    with pytest.raises(SieveError, match="nested deeper"):
        compile_script(nots)


def test_a_script_too_long_is_refused() -> None:
    with pytest.raises(SieveError, match="longer than"):
        compile_script("keep;\n" * 20_000)


def test_every_capability_can_be_required() -> None:
    """What we announce (ManageSieve's SIEVE capability) is what ``require`` accepts."""
    names = ", ".join(f'"{c}"' for c in CAPABILITIES)
    assert compile_script(f"require [{names}];\nkeep;").extensions >= set(CAPABILITIES)


def test_names_and_tags_are_case_insensitive() -> None:
    """RFC 5228 §2.9 / §8.1: identifiers and tags are case-insensitive."""
    script = compile_script('REQUIRE "fileinto";\nIF Header :CONTAINS "Subject" "x" { FileInto "a"; }')
    assert script.commands


def test_compile_is_thread_safe() -> None:
    """sievelib keeps its require state per thread; our line counter is per thread too."""
    from concurrent.futures import ThreadPoolExecutor

    good = 'require "fileinto";\n' + "keep;\n" * 200 + 'fileinto "a";\n'
    bad = "keep;\n" * 150 + "frob;\n"

    def check(i: int) -> int:
        if i % 2:
            return len(compile_script(good).commands)
        try:
            compile_script(bad)
        except SieveError as exc:
            return exc.line
        return -1

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(check, range(16)))
    assert results == [151, 201] * 8
