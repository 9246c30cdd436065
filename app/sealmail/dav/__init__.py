"""CalDAV and CardDAV: Radicale with Sealmail's plug-ins, over each alias's encrypted mailbox."""
