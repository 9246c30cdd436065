"""What a forwarded copy gets before it leaves: an SRS envelope sender and an ARC seal.

SRS keeps SPF passing at the destination (the copy now comes from the forwarding domain); the ARC
set (RFC 8617) records the authentication results we saw, signed with the forwarding domain's
DKIM key, so the destination can still trust DMARC results that forwarding would otherwise break.

The copy gets CRLF line endings first (``smtp.lineends``: what the sending library would make of it
anyway), so the ARC message signature covers the bytes that leave. Fields holding a vertical tab
or form feed are left out of it, as out of DKIM signatures: verifiers disagree about them
(``smtp.dkimsign``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import dkim

from sealmail.addresses import normalize_domain
from sealmail.errors import ConfigStoreError
from sealmail.keyfiles import secret_file
from sealmail.mailauth import dkimsigner
from sealmail.mailauth.srs import Srs
from sealmail.services.dkim import domain_keys, fetch_keys
from sealmail.smtp.dkimsign import unambiguous
from sealmail.smtp.lineends import to_wire
from sealmail.store.errors import StoreUnavailable

if TYPE_CHECKING:
    from sealmail.config.base import ConfigStore
    from sealmail.settings import Settings

log = logging.getLogger(__name__)

ARC_HEADERS = [b"from", b"to", b"cc", b"subject", b"date", b"message-id", b"mime-version", b"content-type"]


def srs_key(settings: Settings) -> bytes:
    """The SRS secret: every MX host shares it (each checks the others' addresses)."""
    if settings.srs_secret:
        return settings.srs_secret.get_secret_value().encode()
    return secret_file(settings.data_dir / "srs.key")


def load_srs(settings: Settings) -> Srs:
    return Srs(srs_key(settings))


def arc_seal(settings: Settings, domain: str, message: bytes) -> bytes:
    """Prepend an ARC set signed by ``domain``'s RSA key (the message unchanged when it has none)."""
    rsa = next((k for k in domain_keys(settings, domain) if k.algorithm == "rsa" and k.path.exists()), None)
    if rsa is None:
        return message
    try:
        headers = dkimsigner.arc_sign(
            message,
            rsa.selector.encode(),
            rsa.domain.encode(),
            rsa.private_pem(),
            settings.auth_id.encode(),
            include_headers=unambiguous(message, ARC_HEADERS),
        )
    except dkim.DKIMException:
        return message  # e.g. no Authentication-Results of ours to seal: forward it as it is
    return b"".join(headers) + message


class ForwardRewriter:
    def __init__(self, settings: Settings, store: ConfigStore | None = None) -> None:
        self.settings = settings
        self.srs = load_srs(settings)
        self.store = store  # where the keys of domains another host added are (runs in a thread)

    def __call__(self, message: bytes, mail_from: str, alias_address: str) -> tuple[bytes, str]:
        domain = normalize_domain(alias_address.rpartition("@")[2]).ascii
        if self.store is not None:  # asks only for key files this host lacks (we are on a worker thread)
            try:
                fetch_keys(self.settings, self.store, domain)
            except (StoreUnavailable, ConfigStoreError) as exc:  # forwarded unsealed, as for a domain without keys
                log.warning("the DKIM keys of %s could not be read from the config store: %s", domain, exc)
        return arc_seal(self.settings, domain, to_wire(message)), self.srs.forward(mail_from, domain)
