"""What a mail client needs to know: the settings table shown with a new password, and Thunderbird's
autoconfig document (https://wiki.mozilla.org/Thunderbird:Autoconfiguration:ConfigFileFormat)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape

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


def autoconfig_xml(settings: Settings, domain: str) -> str:
    """The clientConfig document for ``domain``; the user name is the full address (%EMAILADDRESS%)."""
    host = escape(settings.mail_hostname)
    name = escape(domain)
    imap = _port(settings.imaps_port, 993)
    pop3 = _port(settings.pop3s_port, 995)
    smtp = _port(settings.submission_tls_port, 465)
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
</clientConfig>
"""
