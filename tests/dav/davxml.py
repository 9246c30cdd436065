"""Request bodies and response parsing for the DAV protocol tests (plain ElementTree)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from urllib.parse import unquote

from defusedxml.ElementTree import fromstring

NS = {"d": "DAV:", "c": "urn:ietf:params:xml:ns:caldav", "cr": "urn:ietf:params:xml:ns:carddav"}
HEAD = '<?xml version="1.0" encoding="utf-8"?>\n'


def propfind(*props: str) -> str:
    inner = "".join(f"<{p}/>" for p in props)
    return (
        HEAD + '<d:propfind xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav" '
        'xmlns:cr="urn:ietf:params:xml:ns:carddav" xmlns:cs="http://calendarserver.org/ns/">'
        f"<d:prop>{inner}</d:prop></d:propfind>"
    )


def calendar_query(start: str, end: str, component: str = "VEVENT", *, expand: bool = False) -> str:
    data = f'<c:calendar-data><c:expand start="{start}" end="{end}"/></c:calendar-data>' if expand else ""
    return (
        HEAD + '<c:calendar-query xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">'
        f"<d:prop><d:getetag/>{data}</d:prop>"
        '<c:filter><c:comp-filter name="VCALENDAR">'
        f'<c:comp-filter name="{component}"><c:time-range start="{start}" end="{end}"/></c:comp-filter>'
        "</c:comp-filter></c:filter></c:calendar-query>"
    )


def multiget(kind: str, hrefs: list[str]) -> str:
    refs = "".join(f"<d:href>{h}</d:href>" for h in hrefs)
    if kind == "calendar":
        return (
            HEAD + '<c:calendar-multiget xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">'
            f"<d:prop><d:getetag/><c:calendar-data/></d:prop>{refs}</c:calendar-multiget>"
        )
    return (
        HEAD + '<cr:addressbook-multiget xmlns:d="DAV:" xmlns:cr="urn:ietf:params:xml:ns:carddav">'
        f"<d:prop><d:getetag/><cr:address-data/></d:prop>{refs}</cr:addressbook-multiget>"
    )


def addressbook_query(prop: str, text: str, match_type: str = "contains") -> str:
    return (
        HEAD + '<cr:addressbook-query xmlns:d="DAV:" xmlns:cr="urn:ietf:params:xml:ns:carddav">'
        "<d:prop><d:getetag/><cr:address-data/></d:prop>"
        f'<cr:filter><cr:prop-filter name="{prop}">'
        f'<cr:text-match collation="i;unicode-casemap" match-type="{match_type}">{text}</cr:text-match>'
        "</cr:prop-filter></cr:filter></cr:addressbook-query>"
    )


def sync_collection(token: str = "") -> str:
    return (
        HEAD + '<d:sync-collection xmlns:d="DAV:">'
        f"<d:sync-token>{token}</d:sync-token><d:sync-level>1</d:sync-level>"
        "<d:prop><d:getetag/></d:prop></d:sync-collection>"
    )


def mkcalendar(name: str) -> str:
    return (
        HEAD + '<c:mkcalendar xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:set><d:prop>'
        f"<d:displayname>{name}</d:displayname>"
        '<c:supported-calendar-component-set><c:comp name="VEVENT"/><c:comp name="VTODO"/>'
        "</c:supported-calendar-component-set></d:prop></d:set></c:mkcalendar>"
    )


def mkcol_addressbook(name: str) -> str:
    return (
        HEAD + '<d:mkcol xmlns:d="DAV:" xmlns:cr="urn:ietf:params:xml:ns:carddav"><d:set><d:prop>'
        "<d:resourcetype><d:collection/><cr:addressbook/></d:resourcetype>"
        f"<d:displayname>{name}</d:displayname></d:prop></d:set></d:mkcol>"
    )


def responses(text: str) -> dict[str, ET.Element]:
    """href (unquoted) -> its <response> element."""
    root = fromstring(text)
    return {unquote(r.findtext("d:href", namespaces=NS) or ""): r for r in root.findall("d:response", NS)}


def status_of(response: ET.Element) -> str:
    return response.findtext("d:status", namespaces=NS) or ""


def prop_text(response: ET.Element, path: str) -> str | None:
    for propstat in response.findall("d:propstat", NS):
        if "200" in (propstat.findtext("d:status", namespaces=NS) or ""):
            found = propstat.find(f"d:prop/{path}", NS)
            if found is not None:
                return "".join(found.itertext())
    return None


def prop_element(response: ET.Element, path: str) -> ET.Element | None:
    for propstat in response.findall("d:propstat", NS):
        if "200" in (propstat.findtext("d:status", namespaces=NS) or ""):
            found = propstat.find(f"d:prop/{path}", NS)
            if found is not None:
                return found
    return None


def sync_token(text: str) -> str:
    return fromstring(text).findtext("d:sync-token", namespaces=NS) or ""


def event(uid: str, start: str, end: str, summary: str = "Meeting", extra: str = "") -> str:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Sealmail tests//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:{start}\r\nDTEND:{end}\r\nSUMMARY:{summary}\r\n{extra}"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def todo(uid: str, due: str, summary: str = "Task") -> str:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Sealmail tests//EN\r\nBEGIN:VTODO\r\n"
        f"UID:{uid}\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:{due}\r\nDUE:{due}\r\nSUMMARY:{summary}\r\n"
        "END:VTODO\r\nEND:VCALENDAR\r\n"
    )


def vcard3(uid: str, name: str, email: str) -> str:
    return (
        f"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{uid}\r\nFN:{name}\r\nN:{name.rsplit(maxsplit=1)[-1]};{name.split(maxsplit=1)[0]};;;\r\n"
        f"EMAIL;TYPE=INTERNET:{email}\r\nEND:VCARD\r\n"
    )


def vcard4(uid: str, name: str, email: str) -> str:
    return (
        f"BEGIN:VCARD\r\nVERSION:4.0\r\nUID:{uid}\r\nFN:{name}\r\nN:{name.rsplit(maxsplit=1)[-1]};{name.split(maxsplit=1)[0]};;;\r\n"
        f"EMAIL:{email}\r\nKIND:individual\r\nEND:VCARD\r\n"
    )
