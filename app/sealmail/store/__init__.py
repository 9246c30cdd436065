"""Encrypted mailboxes: schema, backend, spool, MIME parsing, change bus."""
