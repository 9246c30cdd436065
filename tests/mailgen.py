"""Test messages, realistic enough for the store and the protocols."""

from __future__ import annotations


def message(n: int = 1, *, subject: str | None = None, body: str | None = None, extra: str = "") -> bytes:
    subject = subject if subject is not None else f"Message number {n}"
    body = body if body is not None else f"This is the body of message {n}.\r\n"
    return (
        f"From: Sender {n} <sender{n}@example.org>\r\n"
        f"To: rémi@example.test\r\n"
        f"Subject: {subject}\r\n"
        f"Date: Mon, 2 Nov 2026 10:{n % 60:02d}:00 +0100\r\n"
        f"Message-ID: <m{n}@example.org>\r\n"
        f"{extra}"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "\r\n"
        f"{body}"
    ).encode()
