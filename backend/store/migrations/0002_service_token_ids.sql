-- Deskbell schema v2: every token has an id; idempotency keys of /service are scoped by
-- the service token's id, not its name (two integrations could share a name, and the
-- second one's events were dropped as repeats of the first's); a name is held by one
-- live service token at a time.

CREATE TABLE tokens_v2 (
    id INTEGER PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('agent', 'service')),
    agent_id INTEGER REFERENCES agents(id),
    name TEXT,
    device TEXT,
    created_at TEXT NOT NULL,
    expires_at TEXT,
    revoked_at TEXT
);
INSERT INTO tokens_v2 (hash, kind, agent_id, name, device, created_at, expires_at, revoked_at)
    SELECT hash, kind, agent_id, name, device, created_at, expires_at, revoked_at
    FROM tokens ORDER BY created_at, hash;
DROP TABLE tokens;
ALTER TABLE tokens_v2 RENAME TO tokens;
CREATE INDEX tokens_revoked ON tokens (revoked_at) WHERE revoked_at IS NOT NULL;

-- Keys stored before this version belonged to a name: each live token of that name
-- keeps them, so a retry of an event published before the upgrade is still a repeat.
-- No foreign key to tokens: tokens are revoked, never deleted, and the check would
-- cost every publish a look-up.
CREATE TABLE publish_keys_v2 (
    token_id INTEGER NOT NULL,
    key TEXT NOT NULL,
    notifications INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (token_id, key)
);
INSERT INTO publish_keys_v2 (token_id, key, notifications, created_at)
    SELECT t.id, k.key, k.notifications, k.created_at
    FROM publish_keys k JOIN tokens t ON t.kind = 'service' AND t.name = k.service;
DROP TABLE publish_keys;
ALTER TABLE publish_keys_v2 RENAME TO publish_keys;

-- Live service tokens that share a name keep working; all but the newest get their id
-- added to the name, so `service-token issue NAME --replace` replaces exactly one.
UPDATE tokens SET name = name || ' (#' || id || ')'
    WHERE kind = 'service' AND revoked_at IS NULL AND EXISTS (
        SELECT 1 FROM tokens newer
        WHERE newer.kind = 'service' AND newer.revoked_at IS NULL
          AND newer.name = tokens.name AND newer.id > tokens.id
    );
CREATE UNIQUE INDEX tokens_service_name ON tokens (name)
    WHERE kind = 'service' AND revoked_at IS NULL;
