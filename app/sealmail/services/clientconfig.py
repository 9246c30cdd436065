"""What a mail client needs to know, from one place (the settings' host name and ports, never literals):

- the settings table shown with a new password;
- Thunderbird's autoconfig document (https://wiki.mozilla.org/Thunderbird:Autoconfiguration:ConfigFileFormat),
  with the CalDAV and CardDAV servers;
- Microsoft's Autodiscover "POX" answer (MS-OXDSCLI; response schema ``outlook/responseschema/2006a``),
  read by Outlook and many phone clients;
- an Apple configuration profile (``.mobileconfig``): mail, calendar and contacts accounts;
- the CalDAV/CardDAV endpoints the RFC 6764 well-known redirects and SRV/TXT records point at.
"""

from __future__ import annotations

import plistlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import quote
from xml.sax.saxutils import escape, quoteattr

if TYPE_CHECKING:
    from sealmail.settings import Settings


@dataclass(frozen=True, slots=True)
class ClientSetting:
    protocol: str  # IMAP, SMTP, POP3
    host: str
    port: int
    security: str  # what clients call it: "SSL/TLS" (implicit TLS, RFC 8314)
    username: str


def _port(value: int, default: int) -> int:
    return value or default  # 0 (pick a free port) only happens in tests


def client_settings(settings: Settings, address: str) -> list[ClientSetting]:
    host = settings.mail_hostname
    return [
        ClientSetting("IMAP", host, _port(settings.imaps_port, 993), "SSL/TLS", address),
        ClientSetting("SMTP", host, _port(settings.submission_tls_port, 465), "SSL/TLS", address),
        ClientSetting("POP3", host, _port(settings.pop3s_port, 995), "SSL/TLS", address),
    ]


# RFC 6764 §4: the "context path" of the DAV service on its own port. The DAV component answers a
# PROPFIND for DAV:current-user-principal there (RFC 5397) and its own /.well-known/cal|carddav
# redirect to it too.
DAV_CONTEXT_PATH = "/"


def dav_port(settings: Settings, kind: str) -> int:
    """The HTTPS port of the CalDAV (``caldav``) or CardDAV (``carddav``) service."""
    if kind == "caldav":
        return _port(settings.caldav_port, 5000)
    if kind == "carddav":
        return _port(settings.carddav_port, 6000)
    raise ValueError(f"unknown DAV service {kind!r}")


def _origin(host: str, port: int) -> str:
    return f"https://{host}" if port == 443 else f"https://{host}:{port}"


def dav_url(settings: Settings, kind: str, path: str = DAV_CONTEXT_PATH) -> str:
    """``https://<mail host>:<port><path>`` of the CalDAV or CardDAV service."""
    return _origin(settings.mail_hostname, dav_port(settings, kind)) + path


def principal_path(login: str) -> str:
    """The DAV principal of an account: ``/<address>/`` with the address percent-encoded (UTF-8)."""
    return "/" + quote(login, safe="") + "/"


def autoconfig_xml(settings: Settings, domain: str) -> str:
    """The clientConfig document for ``domain``; the user name is the full address (%EMAILADDRESS%)."""
    host = escape(settings.mail_hostname)
    name = escape(domain)
    imap = _port(settings.imaps_port, 993)
    pop3 = _port(settings.pop3s_port, 995)
    smtp = _port(settings.submission_tls_port, 465)
    caldav = escape(dav_url(settings, "caldav"))
    carddav = escape(dav_url(settings, "carddav"))
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<clientConfig version="1.1">
  <emailProvider id="{name}">
    <domain>{name}</domain>
    <displayName>{name}</displayName>
    <displayShortName>{name}</displayShortName>
    <incomingServer type="imap">
      <hostname>{host}</hostname>
      <port>{imap}</port>
      <socketType>SSL</socketType>
      <authentication>password-cleartext</authentication>
      <username>%EMAILADDRESS%</username>
    </incomingServer>
    <incomingServer type="pop3">
      <hostname>{host}</hostname>
      <port>{pop3}</port>
      <socketType>SSL</socketType>
      <authentication>password-cleartext</authentication>
      <username>%EMAILADDRESS%</username>
    </incomingServer>
    <outgoingServer type="smtp">
      <hostname>{host}</hostname>
      <port>{smtp}</port>
      <socketType>SSL</socketType>
      <authentication>password-cleartext</authentication>
      <username>%EMAILADDRESS%</username>
    </outgoingServer>
  </emailProvider>
  <addressBook type="carddav">
    <username>%EMAILADDRESS%</username>
    <authentication>http-basic</authentication>
    <serverURL>{carddav}</serverURL>
  </addressBook>
  <calendar type="caldav">
    <username>%EMAILADDRESS%</username>
    <authentication>http-basic</authentication>
    <serverURL>{caldav}</serverURL>
  </calendar>
</clientConfig>
"""


# ---- Microsoft Autodiscover (POX) -----------------------------------------------------------------
AUTODISCOVER_REQUEST_NS = "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"
AUTODISCOVER_NS = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"
AUTODISCOVER_OUTLOOK_NS = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
AUTODISCOVER_MAX_REQUEST = 16 * 1024  # a request is a few hundred octets


class AutodiscoverError(Exception):
    """An Autodiscover error answer (MS-OXDSCLI §2.2.4.2.1.1: ErrorCode 500, 600, 601)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def parse_autodiscover_request(body: bytes) -> str:
    """The EMailAddress of a POX request. The XML is parsed without DTDs or entity expansion
    (defusedxml); a request for another response schema than outlook's 2006a is refused (601)."""
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import ParseError, fromstring

    if len(body) > AUTODISCOVER_MAX_REQUEST:
        raise AutodiscoverError(600, "Invalid Request")
    try:
        root = fromstring(body, forbid_dtd=True)
    except (ParseError, DefusedXmlException, ValueError):
        raise AutodiscoverError(600, "Invalid Request") from None
    ns = {"a": AUTODISCOVER_REQUEST_NS}
    address: str = root.findtext("a:Request/a:EMailAddress", default="", namespaces=ns).strip()
    schema = root.findtext("a:Request/a:AcceptableResponseSchema", default="", namespaces=ns).strip()
    if root.tag != f"{{{AUTODISCOVER_REQUEST_NS}}}Autodiscover" or not address:
        raise AutodiscoverError(600, "Invalid Request")
    if schema and schema != AUTODISCOVER_OUTLOOK_NS:
        raise AutodiscoverError(601, "Requested schema version not supported")
    return address


def autodiscover_xml(settings: Settings, address: str) -> str:
    """The POX answer: IMAP and SMTP over implicit TLS, the login name is the full address."""
    host = escape(settings.mail_hostname)
    login = escape(address)
    imap = _port(settings.imaps_port, 993)
    smtp = _port(settings.submission_tls_port, 465)

    def protocol(kind: str, port: int) -> str:
        return f"""      <Protocol>
        <Type>{kind}</Type>
        <Server>{host}</Server>
        <Port>{port}</Port>
        <DomainRequired>off</DomainRequired>
        <LoginName>{login}</LoginName>
        <SPA>off</SPA>
        <SSL>on</SSL>
        <AuthRequired>on</AuthRequired>
      </Protocol>
"""

    return f"""<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="{AUTODISCOVER_NS}">
  <Response xmlns="{AUTODISCOVER_OUTLOOK_NS}">
    <Account>
      <AccountType>email</AccountType>
      <Action>settings</Action>
{protocol("IMAP", imap)}{protocol("SMTP", smtp)}    </Account>
  </Response>
</Autodiscover>
"""


def autodiscover_error_xml(error: AutodiscoverError) -> str:
    when = datetime.now(UTC).strftime("%H:%M:%S.%f")[:-3]
    return f"""<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="{AUTODISCOVER_NS}">
  <Response>
    <Error Time={quoteattr(when)} Id="0">
      <ErrorCode>{error.code}</ErrorCode>
      <Message>{escape(error.message)}</Message>
      <DebugData />
    </Error>
  </Response>
</Autodiscover>
"""


# ---- Apple configuration profile -----------------------------------------------------------------
_PROFILE_NS = uuid.UUID("6f1c3f0e-5b7a-5d59-9a57-2a1d3c9e8b40")  # fixed: the same address, the same UUIDs


def _profile_uuid(address: str, part: str) -> str:
    return str(uuid.uuid5(_PROFILE_NS, f"{part}:{address}")).upper()


def apple_profile(settings: Settings, address: str, login: str) -> bytes:
    """A ``.mobileconfig`` with a mail (IMAP + SMTP over TLS), a CalDAV and a CardDAV account.

    ``address`` is shown (Unicode allowed), ``login`` is the user name (the canonical address, its
    domain in A-labels). No password is inside: the device asks for it. Host names are A-labels."""
    host = settings.mail_hostname
    ident = "org.sealmail.profile." + ".".join(reversed(host.split(".")))
    domain = address.rsplit("@", 1)[1]

    def payload(kind: str, part: str, name: str, **fields: object) -> dict[str, object]:
        return {
            "PayloadType": kind,
            "PayloadVersion": 1,
            "PayloadIdentifier": f"{ident}.{part}.{_profile_uuid(login, part)}",
            "PayloadUUID": _profile_uuid(login, part),
            "PayloadDisplayName": name,
            **fields,
        }

    mail = payload(
        "com.apple.mail.managed",
        "mail",
        f"Mail ({address})",
        EmailAccountDescription=address,
        EmailAccountType="EmailTypeIMAP",
        EmailAddress=address,
        IncomingMailServerHostName=host,
        IncomingMailServerPortNumber=_port(settings.imaps_port, 993),
        IncomingMailServerUseSSL=True,
        IncomingMailServerUsername=login,
        IncomingMailServerAuthentication="EmailAuthPassword",
        OutgoingMailServerHostName=host,
        OutgoingMailServerPortNumber=_port(settings.submission_tls_port, 465),
        OutgoingMailServerUseSSL=True,
        OutgoingMailServerUsername=login,
        OutgoingMailServerAuthentication="EmailAuthPassword",
        OutgoingPasswordSameAsIncomingPassword=True,
    )
    caldav = payload(
        "com.apple.caldav.account",
        "caldav",
        f"Calendars ({address})",
        CalDAVAccountDescription=f"Calendars {address}",
        CalDAVHostName=host,
        CalDAVPort=dav_port(settings, "caldav"),
        CalDAVUseSSL=True,
        CalDAVUsername=login,
        CalDAVPrincipalURL=dav_url(settings, "caldav", principal_path(login)),
    )
    carddav = payload(
        "com.apple.carddav.account",
        "carddav",
        f"Contacts ({address})",
        CardDAVAccountDescription=f"Contacts {address}",
        CardDAVHostName=host,
        CardDAVPort=dav_port(settings, "carddav"),
        CardDAVUseSSL=True,
        CardDAVUsername=login,
        CardDAVPrincipalURL=dav_url(settings, "carddav", principal_path(login)),
    )
    profile = {
        "PayloadType": "Configuration",
        "PayloadVersion": 1,
        "PayloadIdentifier": f"{ident}.{_profile_uuid(login, 'profile')}",
        "PayloadUUID": _profile_uuid(login, "profile"),
        "PayloadDisplayName": f"{address} ({domain})",
        "PayloadDescription": f"Mail, calendars and contacts of {address}. The device asks for the password.",
        "PayloadOrganization": domain,
        "PayloadRemovalDisallowed": False,
        "PayloadContent": [mail, caldav, carddav],
    }
    return plistlib.dumps(profile, fmt=plistlib.FMT_XML, sort_keys=True)
