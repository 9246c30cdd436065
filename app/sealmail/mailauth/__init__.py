"""Sender authentication for inbound mail: SPF, DKIM, ARC, DMARC, one Authentication-Results header.

Pure policy code over a DNS interface (``sealmail.mailauth.dnsview``): the MX passes a resolver
pointed at the configured servers, unit tests an in-memory zone. Maintained libraries do the hard
parts — pyspf (RFC 7208), dkimpy (RFC 6376, RFC 8463, RFC 8617), publicsuffixlist (the PSL shipped
in the package, never fetched) — and this package wires them to our DNS and adds what they lack:
every DKIM signature checked, DMARC (RFC 7489) alignment and policy, and the header itself.
"""
