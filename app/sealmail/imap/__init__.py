"""IMAP4rev2 (RFC 9051) and IMAP4rev1 (RFC 3501) over the encrypted mailboxes.

``parser`` turns a complete command (its lines and literals, as the client sent them) into a
typed command object; ``wire`` writes responses; ``session`` is the state machine that runs
commands against the store; ``server`` is the component and the connection loop.
"""
