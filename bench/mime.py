"""Throughput of sealmail.mime on a realistic 4 KB and 200 KB message.

    .venv/bin/python bench/mime.py [--seconds 2]

Prints messages per second for parse, the JSON round trip, BODYSTRUCTURE + ENVELOPE, a section
fetch and the search text. Numbers only, no pass/fail: compare runs on the same machine.
"""

from __future__ import annotations

import argparse
import base64
import functools
import random
import time
from collections.abc import Callable

from sealmail import mime
from sealmail.imap.wire import imap_serialize

HEADER = (
    "Received: from mx1.example.org (mx1.example.org [192.0.2.10])\r\n"
    "\tby mail.example.test (Sealmail) with ESMTPS id 4Xyz0123456789\r\n"
    "\tfor <bob@example.test>; Mon, 02 Sep 2024 10:11:12 +0200\r\n"
    "Received: from [10.0.0.2] by mx1.example.org; Mon, 02 Sep 2024 10:11:10 +0200\r\n"
    "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.org; s=sel;\r\n"
    " h=from:to:subject:date:message-id; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;\r\n"
    " b=dzdVyOfAKCdLXdJOc9G2q8LoXSlEniSbav+yuU4zGeeruD00lszZVoG4ZHRNiYzRdzdVyOfAKCdLXdJOc9G2q8Lo\r\n"
    "Authentication-Results: mail.example.test; spf=pass smtp.mailfrom=example.org; dkim=pass\r\n"
    "From: =?UTF-8?Q?Ren=C3=A9e_Example?= <renee@example.org>\r\n"
    "To: Bob <bob@example.test>, team@example.test\r\n"
    'Cc: "Carol, C." <carol@example.org>\r\n'
    "Subject: =?UTF-8?Q?Quarterly_numbers_=E2=80=94_draft?=\r\n"
    "Date: Mon, 02 Sep 2024 10:11:12 +0200\r\n"
    "Message-ID: <CAO1234567890@mail.example.org>\r\n"
    "MIME-Version: 1.0\r\n"
)


def small_message() -> bytes:
    """About 4 KB: multipart/alternative, quoted-printable text and HTML."""
    para = "The numbers for the quarter are in; caf=C3=A9 meeting at ten. " * 4 + "\r\n"
    html = "<p>The numbers for the <b>quarter</b> are in; caf&eacute; meeting at ten.</p>\r\n" * 9
    return (
        HEADER + 'Content-Type: multipart/alternative; boundary="000000000000alt"\r\n\r\n'
        '--000000000000alt\r\nContent-Type: text/plain; charset="UTF-8"\r\n'
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n" + para * 8 + "\r\n"
        '--000000000000alt\r\nContent-Type: text/html; charset="UTF-8"\r\n\r\n'
        "<html><head><style>p{margin:0}</style></head><body>" + html + "</body></html>\r\n"
        "--000000000000alt--\r\n"
    ).encode()


def large_message() -> bytes:
    """About 200 KB: mixed(alternative(text, html), a 140 KB PDF, a 4 KB image)."""
    rng = random.Random(1)
    pdf = base64.encodebytes(bytes(rng.randrange(256) for _ in range(140_000))).replace(b"\n", b"\r\n")
    png = base64.encodebytes(bytes(rng.randrange(256) for _ in range(4_000))).replace(b"\n", b"\r\n")
    alternative = small_message().split(b"\r\n\r\n", 1)[1]
    return (
        HEADER.encode() + b'Content-Type: multipart/mixed; boundary="000000000000mixed"\r\n\r\n'
        b'--000000000000mixed\r\nContent-Type: multipart/alternative; boundary="000000000000alt"\r\n\r\n'
        + alternative
        + b'--000000000000mixed\r\nContent-Type: application/pdf; name="Q3 numbers.pdf"\r\n'
        b'Content-Disposition: attachment; filename="Q3 numbers.pdf"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
        + pdf
        + b"--000000000000mixed\r\nContent-Type: image/png; name=chart.png\r\nContent-ID: <chart>\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + png + b"--000000000000mixed--\r\n"
    )


def rate(fn: Callable[[], object], seconds: float) -> float:
    fn()
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        fn()
        count += 1
    return count / elapsed


def structure_wire(msg: mime.ParsedMessage) -> tuple[bytes, bytes]:
    """What FETCH (BODYSTRUCTURE ENVELOPE) writes for a message."""
    return imap_serialize(mime.bodystructure(msg)), imap_serialize(mime.envelope_value(msg))


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    seconds = args.parse_args().seconds
    for label, raw in (("4 KB", small_message()), ("200 KB", large_message())):
        msg = mime.parse(raw)
        stored = msg.to_json()
        cases: dict[str, Callable[[], object]] = {
            "parse": functools.partial(mime.parse, raw),
            "to_json": msg.to_json,
            "from_json": functools.partial(mime.ParsedMessage.from_json, stored),
            "BODYSTRUCTURE+ENVELOPE wire": functools.partial(structure_wire, msg),
            "BODY[2]": functools.partial(mime.section_bytes, raw, msg, "2"),
            "search_text": functools.partial(mime.search_text, raw, msg),
        }
        parts = sum(1 for _ in msg.root.walk())
        print(f"{label} message: {len(raw):,} octets, {parts} parts, JSON {len(stored):,} chars")
        for name, fn in cases.items():
            per_second = rate(fn, seconds)
            print(f"  {name:30s} {per_second:12,.0f} /s   {1e6 / per_second:10,.1f} µs")


if __name__ == "__main__":
    main()
