"""The test's user-data, made from the repository's example (cloud-init/user-data.yml).

Only what a user fills in changes: the values marked CHANGE, the certificate method, and the
optional Cloudflare entry is deleted (the example says to, for HTTP-01; the test has no
Cloudflare). Each edit must match exactly once, so a change to the example cannot slip by.

    python3 user_data.py EXAMPLE OUT DOMAIN EMAIL REPO CERT_METHOD
"""

from __future__ import annotations

import re
import sys
from pathlib import Path


def edit(text: str, pattern: str, replacement: str) -> str:
    new, count = re.subn(pattern, replacement, text, flags=re.MULTILINE)
    if count != 1:
        raise SystemExit(f"user_data.py: {pattern!r} matched {count} times in the example user-data")
    return new


def make_user_data(example: str, domain: str, email: str, repo: str, cert_method: str) -> str:
    text = example
    for name, value in (
        ("DOMAIN", domain),
        ("EMAIL", email),
        ("SEALMAIL_REPO", repo),
        ("SEALMAIL_CERT_METHOD", cert_method),
    ):
        text = edit(text, rf'^(\s*export {name}=)"[^"]*"', lambda m, v=value: f'{m.group(1)}"{v}"')
    # The Cloudflare entry: its comment lines, then the item up to the next one.
    return edit(
        text,
        r"^  # Optional: a Cloudflare.*\n(?:  #.*\n)*  - path: /root/\.cloudflare\.ini\n(?:    .*\n|\n)*?(?=\S)",
        "",
    )


def main() -> None:
    example, out, domain, email, repo, cert_method = sys.argv[1:7]
    text = make_user_data(Path(example).read_text(encoding="utf-8"), domain, email, repo, cert_method)
    Path(out).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
