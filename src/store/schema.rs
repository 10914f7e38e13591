//! The journal's schema, versioned from day one. Each migration runs once,
//! in order, inside a transaction; `PRAGMA user_version` records how far a
//! journal has come. Never edit a released migration: add the next one.

use rusqlite::Connection;

use super::StoreError;

const MIGRATIONS: &[&str] = &[
    // 1: messages in both directions, serials, acknowledgements to send,
    //    link tests, audit chain, checkpoints, the audit heads our peers
    //    reported.
    "
    CREATE TABLE messages (
        id               TEXT PRIMARY KEY,
        direction        TEXT NOT NULL CHECK (direction IN ('out', 'in')),
        peer             TEXT NOT NULL,
        serial           INTEGER NOT NULL,
        precedence       INTEGER NOT NULL CHECK (precedence BETWEEN 0 AND 3),
        exercise         INTEGER NOT NULL,
        template_id      TEXT NOT NULL,
        template_version INTEGER NOT NULL,
        released_at      TEXT NOT NULL,
        stored_at        TEXT NOT NULL,
        operator         TEXT NOT NULL,
        state            TEXT NOT NULL,
        sealed           BLOB NOT NULL,
        receipt_at       TEXT,
        receipt          BLOB,
        ack_by           TEXT,
        ack_at           TEXT,
        ack              BLOB,
        refusal          TEXT,
        UNIQUE (direction, peer, serial)
    );
    CREATE INDEX messages_queue ON messages (direction, state, precedence, stored_at);
    CREATE TABLE serials (
        peer          TEXT PRIMARY KEY,
        last_released INTEGER NOT NULL
    );
    CREATE TABLE acks_out (
        message_id   TEXT PRIMARY KEY,
        peer         TEXT NOT NULL,
        precedence   INTEGER NOT NULL,
        doc          BLOB NOT NULL,
        created_at   TEXT NOT NULL,
        delivered_at TEXT
    );
    CREATE TABLE link_tests (
        id        INTEGER PRIMARY KEY,
        peer      TEXT NOT NULL,
        direction TEXT NOT NULL CHECK (direction IN ('out', 'in')),
        nonce     TEXT NOT NULL,
        at        TEXT NOT NULL,
        ok        INTEGER,
        rtt_ms    INTEGER,
        sealed    BLOB NOT NULL
    );
    CREATE TABLE audit (
        seq    INTEGER PRIMARY KEY,
        at     TEXT NOT NULL,
        actor  TEXT NOT NULL,
        action TEXT NOT NULL,
        detail TEXT NOT NULL,
        prev   TEXT NOT NULL,
        hash   TEXT NOT NULL
    );
    CREATE TABLE checkpoints (
        seq    INTEGER PRIMARY KEY,
        hash   TEXT NOT NULL,
        signed BLOB NOT NULL,
        at     TEXT NOT NULL
    );
    CREATE TABLE peer_heads (
        peer TEXT NOT NULL,
        seq  INTEGER NOT NULL,
        hash TEXT NOT NULL,
        at   TEXT NOT NULL,
        PRIMARY KEY (peer, seq)
    );
    ",
    // 2: attachments in both directions. The content lives sealed (age) in
    //    files under the data directory; the journal holds what the queue
    //    and the integrity check need, and the receipt that proved each.
    "
    CREATE TABLE attachments (
        message_id  TEXT NOT NULL,
        direction   TEXT NOT NULL CHECK (direction IN ('out', 'in')),
        idx         INTEGER NOT NULL,
        peer        TEXT NOT NULL,
        name        TEXT NOT NULL,
        size        INTEGER NOT NULL,
        sha256      TEXT NOT NULL,
        sealed_path TEXT NOT NULL,
        sealed_len  INTEGER,
        state       TEXT NOT NULL CHECK (state IN ('pending', 'receipted', 'refused')),
        detail      TEXT,
        receipt     BLOB,
        done_at     TEXT,
        PRIMARY KEY (message_id, direction, idx)
    );
    CREATE INDEX attachments_pending ON attachments (direction, state, peer);
    ",
    // 3: "received" means one thing. An outbound message whose peer sent its
    //    receipt was stored as 'received', like an inbound message awaiting
    //    acknowledgement; it becomes 'receipted' (the peer's journal holds
    //    it). And the second operator of a FLASH release under the
    //    two-person rule, signed in the message, is kept in clear beside
    //    the releaser (NULL where there was none).
    "
    UPDATE messages SET state = 'receipted' WHERE direction = 'out' AND state = 'received';
    ALTER TABLE messages ADD COLUMN second_operator TEXT;
    ",
    // 4: an inbound message's content, as a SHA-256 of its signed fields:
    //    a message sent again under the same id is a duplicate only if its
    //    content is the same (the ciphertext may differ). NULL for messages
    //    stored before, which are compared by sender alone.
    "
    ALTER TABLE messages ADD COLUMN content_hash TEXT;
    ",
    // 5: serials reserved and never carried by a message (sealing or
    //    storing failed, or the process died first; sealing runs outside
    //    the writer, so serials commit out of order), declared to the peer
    //    with the cancelled serials; and how far every serial is settled
    //    (see `serials`). Serials committed in order before are settled.
    "
    ALTER TABLE serials ADD COLUMN settled INTEGER NOT NULL DEFAULT 0;
    UPDATE serials SET settled = last_released;
    CREATE TABLE void_serials (
        peer   TEXT NOT NULL,
        serial INTEGER NOT NULL,
        at     TEXT NOT NULL,
        reason TEXT NOT NULL,
        PRIMARY KEY (peer, serial)
    );
    ",
    // 6: the newest messages of one direction, a page at a time, without
    //    reading the rest (see `Journal::page`).
    "
    CREATE INDEX messages_newest ON messages (direction, stored_at, id);
    ",
    // 7: key rotations. Ours: the peers that pinned our old keys when we
    //    rotated them, which of them hold the notice, and which confirmed
    //    the new fingerprint. Theirs: each notice a peer
    //    sent, pending until an operator here confirms its fingerprint out
    //    of band, then confirmed, then complete once the peer is seen on
    //    its new key. And why a stored message is suspect (stored after
    //    its signer's key was compromised), NULL if it is not.
    "
    CREATE TABLE rotations_out (
        peer        TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        state       TEXT NOT NULL CHECK (state IN ('pending', 'held', 'confirmed')),
        at          TEXT NOT NULL,
        answer      BLOB NOT NULL,
        PRIMARY KEY (peer, fingerprint)
    );
    CREATE TABLE rotations_in (
        peer              TEXT NOT NULL,
        fingerprint       TEXT NOT NULL,
        old_key           TEXT NOT NULL,
        card              TEXT NOT NULL,
        notice            BLOB NOT NULL,
        received_at       TEXT NOT NULL,
        compromised_since TEXT,
        state             TEXT NOT NULL CHECK (state IN ('pending', 'confirmed', 'complete')),
        confirmed_by      TEXT,
        confirmed_at      TEXT,
        PRIMARY KEY (peer, fingerprint)
    );
    ALTER TABLE messages ADD COLUMN suspect TEXT;
    ",
    // 8: the security marking a message carries (signed in it; kept in
    //    clear like its precedence, for the lists). NULL for messages from
    //    before markings.
    "
    ALTER TABLE messages ADD COLUMN label TEXT;
    ",
    // 9: corrections and withdrawals. An amending message names the one it
    //    amends (`amends`, `amends_kind`); the amended one names the newest
    //    message that amends it (`amended_by`, its serial, `amended_kind`).
    //    Kept in clear, like the references' effect on the lists.
    "
    ALTER TABLE messages ADD COLUMN amends TEXT;
    ALTER TABLE messages ADD COLUMN amends_kind TEXT;
    ALTER TABLE messages ADD COLUMN amended_by TEXT;
    ALTER TABLE messages ADD COLUMN amended_by_serial INTEGER;
    ALTER TABLE messages ADD COLUMN amended_kind TEXT;
    CREATE INDEX messages_amends ON messages (amends) WHERE amends IS NOT NULL;
    ",
    // 10: the restores of peers this station answered: a peer restored
    //     from a backup taken at `taken` gets our acknowledgements it lost
    //     once, however often it says hello afterwards.
    "
    CREATE TABLE restores_answered (
        peer  TEXT NOT NULL,
        taken TEXT NOT NULL,
        at    TEXT NOT NULL,
        acks  INTEGER NOT NULL,
        PRIMARY KEY (peer, taken)
    );
    ",
];

/// The schema version this build writes.
pub fn current_version() -> u32 {
    MIGRATIONS.len() as u32
}

/// Refuses a journal written by a newer build, rather than misread it.
pub fn refuse_newer(conn: &Connection) -> Result<u32, StoreError> {
    let version: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > current_version() {
        return Err(StoreError::TooNew {
            found: version,
            supported: current_version(),
        });
    }
    Ok(version)
}

/// Brings a journal up to the current schema.
pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let version = refuse_newer(conn)?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i as u32 + 1)?;
        tx.commit()?;
    }
    Ok(())
}
