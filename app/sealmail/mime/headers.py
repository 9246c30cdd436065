"""Header blocks: fields with offsets, unfolding, MIME parameters (RFC 2045, RFC 2231), RFC 2047 decoding.

Everything here tolerates any input: malformed values give a best-effort result, never an exception.
"""

from __future__ import annotations

import codecs
import email.header
import email.utils
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass

Params = tuple[tuple[str, str], ...]  # MIME parameters as (name, value) pairs, in order

_WSP = b" \t"
# RFC 2045 §5.1 tspecials, plus the RFC 822 specials that end a token in practice.
_TSPECIALS = frozenset('()<>@,;:\\"/[]?=')
# RFC 2231 §7 attribute-char: what may stay unescaped in an extended value.
_ATTRIBUTE_CHARS = frozenset("!#$&+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
# Decoding work per value is capped: search needs the start of a value, not all of a hostile one.
MAX_DECODED_VALUE = 16 * 1024


@dataclass(frozen=True, slots=True)
class RawField:
    """One header field in the raw message: ``raw[start:end]`` is the field with its line ends."""

    name: bytes  # as written, trailing whitespace removed; the whole line when there is no colon
    start: int
    value_start: int
    end: int


def text(data: bytes) -> str:
    """Header octets as ``str``: UTF-8 (RFC 6532), other octets kept with ``surrogateescape``."""
    return data.decode("utf-8", "surrogateescape")


def raw_bytes(value: str) -> bytes:
    """The octets a :func:`text` value came from."""
    return value.encode("utf-8", "surrogateescape")


def iter_fields(raw: bytes, start: int, end: int) -> Iterator[RawField]:
    """The fields of the header block ``raw[start:end]`` in order; stops at the blank line.

    RFC 5322 §2.2.3: a line starting with WSP continues the field before it. A line without a colon is
    kept as a field whose name is the whole line (Dovecot does the same), so no octet is lost.
    """
    pos = start
    current: tuple[int, int, bytes] | None = None  # (start, value_start, name)
    while pos < end:
        nl = raw.find(b"\n", pos, end)
        line_end = end if nl < 0 else nl + 1
        first = raw[pos]
        if first in _WSP:
            if current is None:  # continuation without a field: keep it as a nameless field
                current = (pos, pos, b"")
            pos = line_end
            continue
        if first == 0x0A or (first == 0x0D and raw.startswith(b"\r\n", pos)):
            break  # the blank line that ends the header
        if current is not None:
            yield RawField(current[2], current[0], current[1], pos)
        colon = raw.find(b":", pos, line_end)
        if colon < 0:
            name = raw[pos:line_end].rstrip(b"\r\n")
            current = (pos, line_end, name)
        else:
            current = (pos, colon + 1, raw[pos:colon].rstrip(_WSP))
        pos = line_end
    if current is not None:
        yield RawField(current[2], current[0], current[1], pos)


def top_fields(raw: bytes) -> Iterator[RawField]:
    """The fields of a message's own header (from its start to the first blank line)."""
    return iter_fields(raw, 0, len(raw))


def top_values(raw: bytes, name: str) -> list[bytes]:
    """Unfolded values of every top-level field called ``name`` (case-insensitive), in order."""
    wanted = name.lower().encode()
    return [unfold(raw[f.value_start : f.end]).rstrip(b"\r\n") for f in top_fields(raw) if f.name.lower() == wanted]


def unfold(value: bytes) -> bytes:
    """RFC 5322 §2.2.3 unfolding (CRLF removed, WSP kept), the final line end dropped, leading WSP dropped."""
    return value.replace(b"\r\n", b"").replace(b"\n", b"").lstrip(_WSP)


def field_value(raw: bytes, f: RawField) -> str:
    """The unfolded value of a field as text; leading whitespace removed, trailing whitespace kept."""
    return text(unfold(raw[f.value_start : f.end]))


# --- MIME header values: tokens, quoted strings, comments (RFC 2045 §5.1, RFC 822 §3.3) --------------------


class _Lexer:
    __slots__ = ("pos", "s")

    def __init__(self, s: str) -> None:
        self.s = s
        self.pos = 0

    def skip_cfws(self) -> None:
        """Skip whitespace and (nested) comments; an unterminated comment runs to the end."""
        s, n = self.s, len(self.s)
        while self.pos < n:
            c = s[self.pos]
            if c in " \t\r\n":
                self.pos += 1
            elif c == "(":
                depth = 0
                while self.pos < n:
                    c = s[self.pos]
                    if c == "\\":
                        self.pos += 1
                    elif c == "(":
                        depth += 1
                    elif c == ")":
                        depth -= 1
                        if depth == 0:
                            self.pos += 1
                            break
                    self.pos += 1
            else:
                return

    def peek(self) -> str:
        return self.s[self.pos] if self.pos < len(self.s) else ""

    def token(self) -> str:
        s, n, start = self.s, len(self.s), self.pos
        while self.pos < n and s[self.pos] not in _TSPECIALS and s[self.pos] not in " \t\r\n" and s[self.pos] > " ":
            self.pos += 1
        return s[start : self.pos]

    def quoted(self) -> str:
        """A quoted-string starting at the current '"': its unescaped content; unterminated runs to the end."""
        s, n = self.s, len(self.s)
        self.pos += 1
        out: list[str] = []
        start = self.pos
        while self.pos < n:
            c = s[self.pos]
            if c == "\\" and self.pos + 1 < n:
                out.append(s[start : self.pos])
                out.append(s[self.pos + 1])
                self.pos += 2
                start = self.pos
            elif c == '"':
                out.append(s[start : self.pos])
                self.pos += 1
                return "".join(out)
            else:
                self.pos += 1
        out.append(s[start:n])
        return "".join(out)

    def skip_to(self, char: str) -> None:
        """Advance to the next ``char`` outside quoted strings (or to the end)."""
        s, n = self.s, len(self.s)
        while self.pos < n and s[self.pos] != char:
            if s[self.pos] == '"':
                self.quoted()
            else:
                self.pos += 1


def parse_content_type(value: str) -> tuple[str, str, list[tuple[str, str]]] | None:
    """``type/subtype; params`` (RFC 2045 §5.1); ``None`` when syntactically invalid (then §5.2 applies)."""
    lex = _Lexer(value)
    lex.skip_cfws()
    main = lex.token()
    lex.skip_cfws()
    if not main or lex.peek() != "/":
        return None
    lex.pos += 1
    lex.skip_cfws()
    sub = lex.token()
    if not sub:
        return None
    return main.lower(), sub.lower(), _params(lex)


def parse_disposition(value: str) -> tuple[str, list[tuple[str, str]]] | None:
    """``disposition-type; params`` (RFC 2183 §2); the type as written."""
    lex = _Lexer(value)
    lex.skip_cfws()
    kind = lex.token()
    if not kind:
        return None
    return kind, _params(lex)


def parse_token(value: str) -> str | None:
    """The first token of a value (Content-Transfer-Encoding), as written."""
    lex = _Lexer(value)
    lex.skip_cfws()
    return lex.token() or None


def parse_language(value: str) -> tuple[str, ...] | None:
    """Content-Language (RFC 3282): a comma-separated list of tags."""
    lex = _Lexer(value)
    tags: list[str] = []
    while lex.pos < len(lex.s):
        lex.skip_cfws()
        tag = lex.token()
        if tag:
            tags.append(tag)
        lex.skip_to(",")
        lex.pos += 1
    return tuple(tags) or None


def _params(lex: _Lexer) -> list[tuple[str, str]]:
    """``*(";" attribute "=" value)`` with recovery: garbage skips to the next ';'.

    Lenient where senders are sloppy: an unquoted value runs to the next ';' (``name=my file.pdf``).
    Parameters without a name or without '=' are dropped.
    """
    out: list[tuple[str, str]] = []
    n = len(lex.s)
    lex.skip_to(";")
    while lex.pos < n:
        lex.pos += 1  # the ';'
        lex.skip_cfws()
        name = lex.token()
        lex.skip_cfws()
        if name and lex.peek() == "=":
            lex.pos += 1
            lex.skip_cfws()
            if lex.peek() == '"':
                value = lex.quoted()
            else:
                start = lex.pos
                lex.skip_to(";")
                value = lex.s[start : lex.pos].strip()
            out.append((name, value))
        lex.skip_to(";")
    return out


def merge_rfc2231(params: list[tuple[str, str]]) -> Params:
    """The IMAP form of a parameter list: RFC 2231 continuations merged, extended values kept encoded.

    Plain parameters keep their order; merged ones follow, sorted by name (as Dovecot sorts them).
    An extended result is ``name*`` = ``charset'language'%XX-encoded``, which every RFC 2231 client
    decodes; unencoded sections are percent-encoded when merged into an encoded one (RFC 2231 §4.1).
    """
    plain: list[tuple[str, str]] = []
    groups: dict[tuple[str, bool], dict[int, tuple[str, str, bool]]] = {}
    for name, value in params:
        extended = name.endswith("*")
        base = name[:-1] if extended else name
        star = base.rfind("*")
        if star > 0 and base[star + 1 :].isdigit() and len(base) - star <= 4:
            section: int | None = int(base[star + 1 :])
            base = base[:star]
        elif extended:
            section = None
        else:
            plain.append((name, value))
            continue
        group = groups.setdefault((base.lower(), section is None), {})
        group.setdefault(section or 0, (base, value, extended))
    merged: list[tuple[str, str]] = []
    for group in groups.values():
        sections = [group[i] for i in sorted(group)]
        merged.append(_merge_sections(sections[0][0], [(value, extended) for _, value, extended in sections]))
    merged.sort(key=lambda item: item[0].lower())
    return tuple(plain + merged)


def _merge_sections(name: str, sections: list[tuple[str, bool]]) -> tuple[str, str]:
    if not any(extended for _, extended in sections):
        return name, "".join(value for value, _ in sections)
    first, first_extended = sections[0]
    if first_extended:
        charset, language, rest = email.utils.decode_rfc2231(first)
        prefix = f"{charset or ''}'{language or ''}'"
        pieces = [rest]
    else:
        prefix = "''"
        pieces = [_percent_encode(first)]
    for value, extended in sections[1:]:
        pieces.append(value if extended else _percent_encode(value))
    return name + "*", prefix + "".join(pieces)


def _percent_encode(value: str) -> str:
    return "".join(c if c in _ATTRIBUTE_CHARS else "".join(f"%{b:02X}" for b in raw_bytes(c)) for c in value)


def decoded_param(params: Params, name: str) -> str | None:
    """A parameter's value for people: RFC 2231 ``name*`` preferred and decoded, else RFC 2047 decoded."""
    wanted = name.lower()
    plain = None
    for key, value in params:
        low = key.lower()
        if low == wanted + "*":
            return _decode_extended(value)
        if low == wanted and plain is None:
            plain = value
    return None if plain is None else decode_words(plain)


def _decode_extended(value: str) -> str:
    charset, _language, encoded = email.utils.decode_rfc2231(value)
    data = urllib.parse.unquote_to_bytes(raw_bytes(encoded))
    return decode_charset(data, charset)


# --- charsets and RFC 2047 encoded-words -----------------------------------------------------------------

# Codecs Python has that are not charsets a sender can mean (or that interpret escapes).
_NOT_CHARSETS = frozenset({"unicode-escape", "raw-unicode-escape", "idna", "punycode", "undefined", "charmap"})
# WHATWG Encoding: these labels mean the superset in practice (codec names as codecs.lookup spells them).
_SUPERSETS = {"iso8859-1": "cp1252", "ascii": "cp1252", "gb2312": "gb18030", "gbk": "gb18030", "euc_kr": "cp949"}


def lookup_charset(charset: str | None) -> str | None:
    """The Python codec for a MIME charset label, or ``None`` when unknown or not a text charset."""
    if not charset:
        return None
    try:
        info = codecs.lookup(charset.strip().strip('"').lower())
    except (LookupError, ValueError, TypeError):
        return None
    if not getattr(info, "_is_text_encoding", True) or info.name in _NOT_CHARSETS:
        return None
    return _SUPERSETS.get(info.name, info.name)


def decode_charset(data: bytes, charset: str | None) -> str:
    """Bytes in a declared charset as text. Unknown or absent charset: UTF-8, else Windows-1252."""
    codec = lookup_charset(charset)
    if codec in (None, "cp1252", "utf-8"):
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            if codec == "utf-8":
                return data.decode("utf-8", "replace")
            return data.decode("cp1252", "replace")
    try:
        return data.decode(codec, "replace")
    except Exception:  # a codec that fails despite "replace" (stateful ones): never stop delivery
        return data.decode("utf-8", "replace")


def clean(value: str) -> str:
    """A :func:`text` value with undecodable octets reinterpreted as Windows-1252 (for people, not IMAP)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return decode_charset(raw_bytes(value), None)
    return value


def decode_words(value: str) -> str:
    """RFC 2047 encoded-words decoded (stdlib ``email.header``), charsets with fallbacks; never raises."""
    value = clean(value[:MAX_DECODED_VALUE])
    if "=?" not in value:
        return value
    try:
        chunks = email.header.decode_header(value)
    except Exception:
        return value
    out: list[str] = []
    for data, charset in chunks:
        if isinstance(data, str):
            out.append(data)
        elif charset is None:
            # decode_header returns unencoded runs as raw-unicode-escape bytes
            try:
                out.append(data.decode("raw-unicode-escape"))
            except UnicodeDecodeError:
                out.append(data.decode("latin-1"))
        else:
            out.append(decode_charset(data, charset))
    return "".join(out)
