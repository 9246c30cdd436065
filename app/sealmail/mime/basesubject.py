"""The base subject of RFC 5256 §2.1: a Subject without the "Re:", "Fwd:", "[list]" and "(fwd)" that
mail software adds, which SORT (SUBJECT) orders by and THREAD groups by.

RFC 5256 asks every server and disconnected client to use exactly its algorithm, so this follows the
numbered steps one by one, on the subject decoded to Unicode (step 1). It also tells whether the
subject was a reply or forward (a subj-refwd, a "(fwd)" trailer or a "[fwd: ...]" wrapper was
removed), which THREAD=REFERENCES needs when it merges threads by subject (RFC 5256 §4, step 5).
"""

from __future__ import annotations

import re

from sealmail.mime.headers import decode_words

_WSP = " \t"
_SPACES = re.compile(r"[ \t\r\n]+")


def base_subject(raw: str | None) -> tuple[str, bool]:
    """``(base subject, was a reply or forward)`` of a Subject field value as written (encoded-words intact)."""
    if not raw:
        return "", False
    # (1) RFC 2047 encoded-words to Unicode; tabs and line continuations to spaces; runs of spaces to one
    text = _SPACES.sub(" ", decode_words(_SPACES.sub(" ", raw)))
    reply = False
    while True:
        # (2) trailing subj-trailer: "(fwd)" / WSP, as often as it matches
        while True:
            stripped = text.rstrip(_WSP)
            if stripped.lower().endswith("(fwd)"):
                stripped = stripped[:-5]
                reply = True
            if stripped == text:
                break
            text = stripped
        # (3) leading subj-leader, (4) a leading subj-blob when a non-empty base is left, (5) repeat
        while True:
            before = text
            end = _leader(text)
            if end:
                reply = reply or text[:end].strip(_WSP) != ""
                text = text[end:]
            blob = _blob(text, 0)
            if blob and text[blob:]:
                text = text[blob:]
            if text == before:
                break
        # (6) "[fwd:" ... "]" around everything: unwrap it and start again at (2)
        if text[:5].lower() == "[fwd:" and text.endswith("]"):
            text = text[5:-1]
            reply = True
            continue
        # (7) what is left is the base subject
        return text, reply


def _blob(text: str, i: int) -> int:
    """End of a subj-blob (``"[" *BLOBCHAR "]" *WSP``) starting at ``i``, or 0 when none starts there."""
    if i >= len(text) or text[i] != "[":
        return 0
    j = i + 1
    while j < len(text) and text[j] not in "[]":
        j += 1
    if j >= len(text) or text[j] != "]":
        return 0
    j += 1
    while j < len(text) and text[j] in _WSP:
        j += 1
    return j


def _leader(text: str) -> int:
    """End of the subj-leader at the start of ``text`` (0: none): ``(*subj-blob subj-refwd) / WSP``."""
    if text[:1] in (" ", "\t"):
        return 1
    i = 0
    while True:
        refwd = _refwd(text, i)
        if refwd:
            return refwd
        blob = _blob(text, i)
        if not blob:
            return 0
        i = blob


def _refwd(text: str, i: int) -> int:
    """End of a subj-refwd (``("re" / ("fw" ["d"])) *WSP [subj-blob] ":"``) at ``i``, or 0."""
    head = text[i : i + 3].lower()
    if head.startswith("fwd"):
        j = i + 3
    elif head[:2] in ("re", "fw"):
        j = i + 2
    else:
        return 0
    while j < len(text) and text[j] in _WSP:
        j += 1
    j = _blob(text, j) or j
    return j + 1 if j < len(text) and text[j] == ":" else 0
