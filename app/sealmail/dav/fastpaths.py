"""PROPFIND depth 1 on a calendar or address book, answered from the store's rows.

Clients list a collection's members this way on every sync (RFC 4791 §8.2.1.4 and RFC 6578 fall
back to it), asking for a handful of properties per resource. Radicale builds one ElementTree per
resource and serialises it in pure Python (~150 µs each); here the collection's own response still
comes from Radicale (a depth-0 PROPFIND with the same body), and the members' responses are written
as text from the indexed columns: the same properties and statuses Radicale gives a resource
(RFC 4918 §9.1: each property 200 with its value, or 404).

Only when every requested property is one this module answers exactly; anything else (allprop,
propname, privilege sets...) goes to Radicale unchanged.
"""

from __future__ import annotations

import io
from email.utils import format_datetime
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import quote
from xml.sax.saxutils import escape

from defusedxml.ElementTree import ParseError, fromstring
from radicale import xmlutils

if TYPE_CHECKING:
    from sealmail.dav.plugins import Collection
    from sealmail.store.dav import DavItem

DAV = "{DAV:}"
# Members' properties answered from the row (200); everything else asked of a member is 404, except
# those Radicale gives every resource, which send the request to Radicale.
_ROW_PROPS = frozenset(
    {
        DAV + "getetag",
        DAV + "getlastmodified",
        DAV + "getcontenttype",
        DAV + "getcontentlength",
        DAV + "resourcetype",
        DAV + "owner",
        DAV + "principal-collection-set",
    }
)
_RADICALE_ONLY = frozenset(
    {
        DAV + "current-user-principal",
        DAV + "current-user-privilege-set",
        DAV + "supported-report-set",
        xmlutils.make_clark("C:max-resource-size"),
    }
)


class _Kind(NamedTuple):
    name: str
    component_name: str


def requested_props(body: bytes) -> list[str] | None:
    """The properties of a ``<propfind><prop>`` body in order, or None (allprop, propname, bad XML)."""
    if not body.strip():
        return None
    try:
        root = fromstring(body)
    except (ParseError, ValueError):
        return None
    if root.tag != DAV + "propfind" or len(root) != 1 or root[0].tag != DAV + "prop":
        return None
    props = [child.tag for child in root[0]]
    if not props or any(p in _RADICALE_ONLY for p in props) or len(set(props)) != len(props):
        return None
    return props


def _empty(tag: str) -> str:
    namespace, _, local = tag[1:].partition("}") if tag.startswith("{") else ("", "", tag)
    if namespace == "DAV:":
        return f"<{local} />"
    return f'<{local} xmlns="{escape(namespace, {chr(34): "&quot;"})}" />'


def member_responses(
    collection: Collection, rows: list[DavItem], props: list[str], base_prefix: str, encoding: str
) -> str:
    """``<response>`` elements (default namespace DAV:) for ``rows``."""
    owner_href = escape(quote(f"{base_prefix}/{collection.owner}/"))
    root_href = escape(quote(f"{base_prefix}/"))
    missing = "".join(_empty(p) for p in props if p not in _ROW_PROPS)
    missing_block = (
        f"<propstat><prop>{missing}</prop><status>HTTP/1.1 404 Not Found</status></propstat>" if missing else ""
    )
    prefix = escape(quote(f"{base_prefix}/{collection.path}/"))  # quoting is per character: once will do
    kinds: dict[tuple[str, str], str] = {}
    out = io.StringIO()
    for row in rows:
        found = []
        for prop in props:
            if prop == DAV + "getetag":
                found.append(f"<getetag>{escape(row.etag)}</getetag>")
            elif prop == DAV + "getlastmodified":
                found.append(f"<getlastmodified>{format_datetime(row.modified, usegmt=True)}</getlastmodified>")
            elif prop == DAV + "getcontenttype":
                key = (row.name, row.component)
                if key not in kinds:
                    kinds[key] = escape(xmlutils.get_content_type(_Kind(*key), encoding))  # type: ignore[arg-type]
                found.append(f"<getcontenttype>{kinds[key]}</getcontenttype>")
            elif prop == DAV + "getcontentlength":
                found.append(f"<getcontentlength>{row.size}</getcontentlength>")
            elif prop == DAV + "resourcetype":
                found.append("<resourcetype />")
            elif prop == DAV + "owner":
                found.append(f"<owner><href>{owner_href}</href></owner>")
            elif prop == DAV + "principal-collection-set":
                found.append(f"<principal-collection-set><href>{root_href}</href></principal-collection-set>")
        out.write(f"<response><href>{prefix}{escape(quote(row.href))}</href>")
        if found:
            out.write(f"<propstat><prop>{''.join(found)}</prop><status>HTTP/1.1 200 OK</status></propstat>")
        out.write(missing_block)
        out.write("</response>")
    return out.getvalue()


def splice(answer: bytes, members: str, encoding: str) -> bytes | None:
    """Insert ``members`` before the end of Radicale's depth-0 multistatus (default namespace DAV:)."""
    text = answer.decode(encoding)
    end = text.rfind("</multistatus>")
    if end < 0 or 'xmlns="DAV:"' not in text[:400]:
        return None
    return (text[:end] + members + text[end:]).encode(encoding)


def as_environ_with(environ: dict[str, Any], body: bytes, depth: str) -> dict[str, Any]:
    copy = dict(environ)
    copy["wsgi.input"] = io.BytesIO(body)
    copy["CONTENT_LENGTH"] = str(len(body))
    copy["HTTP_DEPTH"] = depth
    return copy
