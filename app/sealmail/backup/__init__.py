"""Encrypted backups to S3 and their restore (``sealmail backup ...``).

What goes where, and why the server never needs a mailbox key:

* mailboxes (``mailboxes/<id>.sqlite`` and its ``-wal``) are SQLCipher files: they are copied
  byte for byte while holding the mailbox's writer lock (the ``flock`` every writer and every WAL
  checkpoint takes), so database and WAL are one consistent state, and uploaded as they are —
  still encrypted with a key only the alias password unwraps;
* sealed spools are copied with SQLite's online backup API and uploaded as they are (their
  records are sealed to the mailbox's public key);
* everything else in the data directory (the config store, the queue, key files, DKIM keys, dev
  TLS material), the env file and the TLS certificate and key are *secrets*: each is sealed to the
  operator backup public key before it leaves the host. Only the operator's private key — printed
  once by ``sealmail backup init-key`` and kept off the server — opens them.

Objects are stored once per content (``<prefix>/objects/<id>``) and each run writes a manifest
(``<prefix>/runs/<run id>.json``) after every object it names is uploaded: a failed run leaves the
previous manifests, and everything they name, as they were.
"""
