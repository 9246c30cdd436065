"""DMARC aggregate reports (RFC 7489 §7.2, appendix C) and SMTP TLS reports (RFC 8460), read from the
mail that brings them.

Pure: bytes in, config records (``config.models.DmarcReport``, ``TlsReport``) or a ``ReportError``
out; nothing is stored, sent or served here. The MX hands it the messages that reach the report
addresses the app publishes (``smtp.reportintake``).

- ``unpack``: the report parts of a message (by media type, file name or magic bytes: ``.xml``,
  ``.gz``, ``.zip``, ``application/tlsrpt+gzip``, ``application/gzip`` without a good name, ...),
  unpacked within a byte limit that holds whatever a zip or gzip header claims;
- ``dmarc``: the aggregate report's XML, parsed by defusedxml with every DTD refused (so no entity
  is ever expanded and nothing is fetched);
- ``tlsrpt``: the TLS report's JSON;
- ``read``: all of it for one message.
"""
