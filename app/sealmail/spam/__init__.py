"""Spam filtering: rspamd's HTTP protocol (``rspamd``), what its answer means for the MX (``policy``),
and a private rspamd for ``sealmail dev`` and the tests (``localrspamd``)."""
