"""A reproducible corpus of realistic messages for the benchmarks (5% with attachments).

``threads=True`` makes 40% of the messages replies to a recent earlier one ("Re:" its subject,
In-Reply-To and References), so SORT and THREAD have conversations to work on; the replies are
chosen with a random stream of their own, so the words of every message stay the same either way.
"""

from __future__ import annotations

import base64
import random
from datetime import UTC, datetime, timedelta

WORDS = (  # noqa: SIM905 - a paragraph of words reads better than a 60-item list
    "meeting report budget schedule review project quarterly update invoice travel lunch team design release "
    "customer feedback contract proposal deadline agenda minutes analysis forecast roadmap hiring interview "
    "security incident backup server migration database network performance holiday conference zürich café "
    "résumé naïve straße"
).split()
NAMES = ["Alice Martin", "Bob Chen", "Chloé Durand", "David Kim", "Eva Müller", "Farid Haddad", "Grace Hopper"]


def vocabulary(rng: random.Random, size: int = 6000) -> list[str]:
    """Real words first, then pronounceable made-up ones: a long tail like real mail has."""
    syllables = ["ka", "lo", "mi", "ne", "ru", "ta", "vo", "shi", "den", "gar", "pol", "tre", "ax", "um", "bel", "cor"]
    words = list(WORDS)
    seen = set(words)
    while len(words) < size:
        word = "".join(rng.choice(syllables) for _ in range(rng.randint(2, 4)))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


def corpus(count: int, seed: int = 4242, *, threads: bool = False) -> list[bytes]:
    rng = random.Random(seed)
    replies = random.Random(seed + 1)
    subjects: list[str] = []
    references: list[list[str]] = []
    words = vocabulary(rng)
    weights = [1 / (rank + 1) for rank in range(len(words))]  # Zipf: a few common words, many rare ones
    start = datetime(2025, 1, 1, tzinfo=UTC)
    out = []
    for n in range(count):
        name = rng.choice(NAMES)
        local = name.split()[0].lower()
        subject = " ".join(rng.choices(words, weights, k=rng.randint(3, 8))).capitalize()
        paragraphs = []
        for _ in range(rng.randint(2, 10)):
            paragraphs.append(" ".join(rng.choices(words, weights, k=rng.randint(20, 60))) + ".")
        body = "\r\n\r\n".join(paragraphs)
        date = (start + timedelta(minutes=37 * n)).strftime("%a, %d %b %Y %H:%M:%S +0000")
        subject, refs, thread_lines = f"{subject} #{n}", [], ""
        if threads and n and replies.random() < 0.4:
            parent = n - replies.randint(1, min(n, 50))
            subject = "Re: " + subjects[parent].removeprefix("Re: ")
            refs = [*references[parent], f"<bench-{parent}@example.org>"][-10:]
            thread_lines = f"In-Reply-To: {refs[-1]}\r\nReferences: {' '.join(refs)}\r\n"
        subjects.append(subject)
        references.append(refs)
        head = (
            f"From: {name} <{local}@example.org>\r\nTo: Demo <demo@example.test>\r\n"
            f"Subject: {subject}\r\nDate: {date}\r\nMessage-ID: <bench-{n}@example.org>\r\n{thread_lines}"
            "MIME-Version: 1.0\r\n"
        )
        if rng.random() < 0.05:
            attachment = base64.encodebytes(rng.randbytes(rng.randint(50_000, 200_000))).replace(b"\n", b"\r\n")
            raw = (
                (
                    head + f'Content-Type: multipart/mixed; boundary="b-{n}"\r\n\r\n'
                    f"--b-{n}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
                    f'--b-{n}\r\nContent-Type: application/pdf; name="doc{n}.pdf"\r\n'
                    f'Content-Disposition: attachment; filename="doc{n}.pdf"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
                ).encode()
                + attachment
                + f"\r\n--b-{n}--\r\n".encode()
            )
        else:
            raw = (head + f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n").encode()
        out.append(raw)
    return out
