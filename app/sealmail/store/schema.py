"""The schema inside each encrypted mailbox file (DESIGN §5), with forward migrations.

Version lives in ``PRAGMA user_version``; ``MIGRATIONS`` only ever grows.
"""

from __future__ import annotations

import sqlcipher3

from sealmail.migrations import apply_migrations

MIGRATIONS: list[str] = [
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;

    CREATE TABLE folders (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        special_use TEXT,
        uidvalidity INTEGER NOT NULL,
        uidnext INTEGER NOT NULL DEFAULT 1,
        highestmodseq INTEGER NOT NULL DEFAULT 1,
        subscribed INTEGER NOT NULL DEFAULT 1,
        noselect INTEGER NOT NULL DEFAULT 0
    );

    -- One row per distinct message; COPY and duplicate deliveries share it (refcount). What FETCH reads
    -- lives in narrow tables of its own, so fetching every ENVELOPE (or every header) decrypts only
    -- those pages, not whole message rows.
    CREATE TABLE bodies (
        id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: sessions cache parsed bodies by id
        digest BLOB NOT NULL UNIQUE,
        size INTEGER NOT NULL,
        sent_date TEXT,
        refcount INTEGER NOT NULL,
        splices TEXT NOT NULL
    );
    CREATE TABLE body_envelopes (id INTEGER PRIMARY KEY REFERENCES bodies(id), envelope TEXT NOT NULL);
    CREATE TABLE body_headers (id INTEGER PRIMARY KEY REFERENCES bodies(id), header BLOB NOT NULL);
    CREATE TABLE body_structures (
        id INTEGER PRIMARY KEY REFERENCES bodies(id),
        bodystructure TEXT NOT NULL,
        structure TEXT NOT NULL
    );

    -- The compressed message with large attachment bodies cut out.
    CREATE TABLE body_content (
        id INTEGER PRIMARY KEY REFERENCES bodies(id),
        skeleton BLOB NOT NULL
    );

    -- Large attachment bodies, cut out of the skeleton and shared by SHA-256.
    CREATE TABLE attachments (
        digest BLOB PRIMARY KEY,
        size INTEGER NOT NULL,
        packing TEXT NOT NULL,  -- how data holds the octets: see store/attachments.py
        data BLOB NOT NULL,
        refcount INTEGER NOT NULL
    ) WITHOUT ROWID;

    -- Substring search (IMAP SEARCH is substring, case-insensitive): a trigram index, rowid = bodies.id.
    CREATE VIRTUAL TABLE body_text USING fts5(subject, from_, to_, cc, bcc, headers, body, tokenize = 'trigram');

    CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        folder_id INTEGER NOT NULL REFERENCES folders(id),
        uid INTEGER NOT NULL,
        modseq INTEGER NOT NULL,
        flags INTEGER NOT NULL DEFAULT 0,
        keywords TEXT,
        recent INTEGER NOT NULL DEFAULT 1,
        internal_date TEXT NOT NULL,
        size INTEGER NOT NULL,
        body_id INTEGER NOT NULL REFERENCES bodies(id),
        UNIQUE (folder_id, uid)
    );
    CREATE INDEX messages_by_modseq ON messages (folder_id, modseq);
    CREATE INDEX messages_by_date ON messages (folder_id, internal_date);
    CREATE INDEX messages_by_size ON messages (folder_id, size);
    CREATE INDEX messages_by_body ON messages (body_id);

    -- Keywords defined in this mailbox, in the spelling first used (they compare case-insensitively).
    CREATE TABLE keyword_names (name TEXT PRIMARY KEY COLLATE NOCASE) WITHOUT ROWID;

    -- Expunged UIDs with the MODSEQ of their removal (CONDSTORE/QRESYNC, RFC 7162 §3.2.10).
    CREATE TABLE expunged (
        folder_id INTEGER NOT NULL,
        uid INTEGER NOT NULL,
        modseq INTEGER NOT NULL,
        PRIMARY KEY (folder_id, uid)
    ) WITHOUT ROWID;
    """,
    """
    -- What protocols send (store/wireform.py): crlf_size counts every line ending as CRLF (POP3, RFC 1939
    -- §11), ascii_size also downgrades a header with raw UTF-8 for clients that did not enable UTF-8
    -- (RFC 6856, RFC 6855, RFC 6858), utf8_header says the header has 8-bit octets. Computed at append
    -- time; NULL for messages stored before this migration (filled in the first time they are listed).
    -- In messages, whose rows are small, not in bodies: listing a folder must not read and decrypt the
    -- large body rows.
    ALTER TABLE messages ADD COLUMN crlf_size INTEGER;
    ALTER TABLE messages ADD COLUMN ascii_size INTEGER;
    ALTER TABLE messages ADD COLUMN utf8_header INTEGER;
    """,
    """
    -- CalDAV / CardDAV (RFC 4791, RFC 6352). A collection lives under its owner's principal; its kind
    -- is VCALENDAR, VADDRESSBOOK or '' (a plain WebDAV collection). props: the collection's WebDAV
    -- properties as JSON. sync_token counts changes (RFC 6578); sync_floor is the oldest token whose
    -- deletions are still known. uid: random, so a collection made again under the same name never
    -- accepts the old one's sync tokens.
    CREATE TABLE IF NOT EXISTS dav_collections (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        uid TEXT NOT NULL,
        kind TEXT NOT NULL,
        props TEXT NOT NULL DEFAULT '{}',
        sync_token INTEGER NOT NULL DEFAULT 0,
        sync_floor INTEGER NOT NULL DEFAULT 0,
        modified TEXT NOT NULL
    );

    -- One calendar object resource or vCard. Small, hot columns first; the text last. tr_start/tr_end:
    -- the enclosing time range in UTC seconds (recurrences included; unbounded rules reach the maximum),
    -- which answers calendar-query time ranges from the index.
    CREATE TABLE IF NOT EXISTS dav_items (
        id INTEGER PRIMARY KEY,
        collection_id INTEGER NOT NULL REFERENCES dav_collections(id) ON DELETE CASCADE,
        href TEXT NOT NULL,
        uid TEXT NOT NULL,
        etag TEXT NOT NULL,
        name TEXT NOT NULL,
        component TEXT NOT NULL,
        tr_start INTEGER NOT NULL,
        tr_end INTEGER NOT NULL,
        size INTEGER NOT NULL,
        sync_token INTEGER NOT NULL,
        modified TEXT NOT NULL,
        body TEXT NOT NULL,
        UNIQUE (collection_id, href)
    );
    CREATE INDEX IF NOT EXISTS dav_items_by_uid ON dav_items (collection_id, uid);
    CREATE INDEX IF NOT EXISTS dav_items_by_time ON dav_items (collection_id, tr_start, tr_end);
    CREATE INDEX IF NOT EXISTS dav_items_by_sync ON dav_items (collection_id, sync_token);

    -- Deleted hrefs with the token of their removal, for sync-collection (RFC 6578 §3.5.2).
    CREATE TABLE IF NOT EXISTS dav_tombstones (
        collection_id INTEGER NOT NULL REFERENCES dav_collections(id) ON DELETE CASCADE,
        href TEXT NOT NULL,
        sync_token INTEGER NOT NULL,
        PRIMARY KEY (collection_id, href)
    ) WITHOUT ROWID;

    -- vCard property values, case-folded, for addressbook-query text-match (RFC 6352 §10.5.4).
    CREATE TABLE IF NOT EXISTS dav_card_values (
        item_id INTEGER NOT NULL REFERENCES dav_items(id) ON DELETE CASCADE,
        prop TEXT NOT NULL,
        value TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS dav_card_values_by_item ON dav_card_values (item_id);
    CREATE INDEX IF NOT EXISTS dav_card_values_by_prop ON dav_card_values (prop, item_id);
    """,
    """
    -- SEARCH SENTBEFORE/SENTON/SENTSINCE compare the Date: header's date as written, without its time and
    -- zone (RFC 9051 §6.4.4), which the UTC instant in sent_date cannot give back: 'YYYY-MM-DD', NULL
    -- without a readable Date:. Filled here for stored mail from its header block (sent_day_of is
    -- store.indexing.sent_day_of_header, registered on every connection).
    ALTER TABLE bodies ADD COLUMN sent_day TEXT;
    UPDATE bodies SET sent_day = sent_day_of((SELECT h.header FROM body_headers h WHERE h.id = bodies.id));

    -- Subscribed names whose mailbox is gone (deleted): a subscription is to a name, and the server must not
    -- drop it on its own (RFC 9051 §6.3.9); LIST (SUBSCRIBED) shows them as non-existent (RFC 5258 §3). A name
    -- is here only while no folder row has it (a folder made again under it takes the subscription back).
    CREATE TABLE lost_subscriptions (name TEXT PRIMARY KEY) WITHOUT ROWID;

    -- OBJECTID (RFC 8474): MAILBOXID per folder (kept by RENAME, new for a folder made again) and EMAILID
    -- per body (so COPY and MOVE keep it). Random, never derived from names, addresses or content
    -- (§9); given here to what exists, and by store.rows to what is made later.
    ALTER TABLE folders ADD COLUMN object_id TEXT;
    UPDATE folders SET object_id = 'F' || lower(hex(randomblob(12)));
    CREATE UNIQUE INDEX folders_by_object_id ON folders (object_id);
    ALTER TABLE bodies ADD COLUMN object_id TEXT;
    UPDATE bodies SET object_id = 'M' || lower(hex(randomblob(12)));
    CREATE UNIQUE INDEX bodies_by_object_id ON bodies (object_id);

    -- PREVIEW (RFC 8970): each message's preview text, made from the decrypted message the first time a
    -- client asks (store.sections), kept here, inside the encrypted file, and nowhere else.
    CREATE TABLE body_previews (id INTEGER PRIMARY KEY REFERENCES bodies(id), preview TEXT NOT NULL);
    """,
    """
    -- QRESYNC (RFC 7162 §3.2.5.1, §3.2.6): VANISHED (EARLIER) asks which UIDs went after a MOD-SEQUENCE.
    -- The expunged table keeps every one (never pruned, so the answer is exact); this index answers from
    -- the few recent ones instead of reading every tombstone the folder ever had.
    CREATE INDEX IF NOT EXISTS expunged_by_modseq ON expunged (folder_id, modseq);
    """,
    """
    -- SORT and THREAD keys (RFC 5256, RFC 5957) per body, computed at append time (store/sortkeys.py).
    -- Text keys are kept in their i;unicode-casemap form (RFC 5051), so a plain ORDER BY sorts them;
    -- the sent date is repeated from bodies so that SORT and THREAD read this narrow table only.
    -- Bodies stored before this migration get their row the first time a SORT or THREAD needs it.
    CREATE TABLE IF NOT EXISTS body_sortkeys (
        id INTEGER PRIMARY KEY REFERENCES bodies(id),
        sent_date TEXT,
        subject TEXT NOT NULL,
        reply INTEGER NOT NULL,
        from_ TEXT NOT NULL,
        to_ TEXT NOT NULL,
        cc TEXT NOT NULL,
        display_from TEXT NOT NULL,
        display_to TEXT NOT NULL,
        message_id TEXT,
        refs TEXT NOT NULL
    );
    """,
    """
    -- SEARCH text is indexed in batches after the append (store/textindex.py): every body with an id
    -- up to this mark has its text in body_text. Every body stored so far has.
    INSERT OR REPLACE INTO meta (key, value) VALUES ('text_indexed_through', (SELECT coalesce(max(id), 0) FROM bodies));

    -- The octets the quota counts (messages and DAV items), kept by triggers in the transaction of each
    -- change: the check at every APPEND reads this row instead of summing every message's size.
    INSERT OR REPLACE INTO meta (key, value)
        VALUES ('used_octets', (SELECT coalesce(sum(size), 0) FROM messages) + (SELECT coalesce(sum(size), 0) FROM dav_items));
    CREATE TRIGGER IF NOT EXISTS used_message_added AFTER INSERT ON messages BEGIN
        UPDATE meta SET value = value + NEW.size WHERE key = 'used_octets';
    END;
    CREATE TRIGGER IF NOT EXISTS used_message_removed AFTER DELETE ON messages BEGIN
        UPDATE meta SET value = value - OLD.size WHERE key = 'used_octets';
    END;
    CREATE TRIGGER IF NOT EXISTS used_dav_added AFTER INSERT ON dav_items BEGIN
        UPDATE meta SET value = value + NEW.size WHERE key = 'used_octets';
    END;
    CREATE TRIGGER IF NOT EXISTS used_dav_removed AFTER DELETE ON dav_items BEGIN
        UPDATE meta SET value = value - OLD.size WHERE key = 'used_octets';
    END;
    CREATE TRIGGER IF NOT EXISTS used_dav_resized AFTER UPDATE OF size ON dav_items BEGIN
        UPDATE meta SET value = value - OLD.size + NEW.size WHERE key = 'used_octets';
    END;
    """,
    """
    -- Spam learning from the user's own filing (spam/learning.py, services/spamlearning.py): a message
    -- moved or copied into Junk waits here to be taught to rspamd as spam, one moved out as ham. Here,
    -- inside the encrypted file, because the message is readable only while a session holds the key:
    -- the job is queued in the move's transaction and done by the process holding the key then, or by
    -- the next one to open the mailbox. One row per body (the latest filing wins); gone with its body.
    CREATE TABLE IF NOT EXISTS learn_jobs (
        id INTEGER PRIMARY KEY REFERENCES bodies(id),
        kind TEXT NOT NULL CHECK (kind IN ('spam', 'ham')),
        attempts INTEGER NOT NULL DEFAULT 0
    );
    """,
]


def migrate(db: sqlcipher3.Connection) -> int:
    return apply_migrations(db, MIGRATIONS, "mailbox")
