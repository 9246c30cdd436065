"""Deliverability checks (``sealmail doctor``, the web admin's Deliverability page): will mail from
this host arrive, and if not, what to change where.

- ``host``: the public addresses (the settings', else the host name's A/AAAA records), their PTR
  and forward-confirmed reverse DNS against the HELO name, the HELO name's own SPF record for each
  of them (RFC 7208 §2.3), and the DNS blocklists (``blocklists``: each list's codes and what they
  mean);
- ``port25``: whether outbound port 25 reaches other mail servers at all;
- ``domain``: per hosted domain, the published records against what this host needs (MX, SPF by
  evaluation, DKIM against the keys it signs with, DMARC, MTA-STS with its policy fetched, TLS-RPT,
  client discovery);
- ``spfeval``: one SPF evaluation for both identities, a domain's MAIL FROM and the HELO name;
- ``certificates``: the certificate each TLS listener serves (trust, names, days left);
- ``run``: all of it side by side within bounded time, as one ``findings.Report`` (problems first,
  each with its fix; a stable id per finding so a scheduled run can tell new problems from old).

It only reads: DNS, the listeners, the config store and the DKIM keys. Nothing is changed.
"""
