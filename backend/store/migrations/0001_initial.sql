-- Deskbell schema v1 for SQLite.
CREATE TABLE inboxes (
    id INTEGER PRIMARY KEY,
    public_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);

CREATE TABLE agents (
    id INTEGER PRIMARY KEY,
    public_id TEXT NOT NULL UNIQUE,
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    password_hash TEXT,
    created_at TEXT NOT NULL
);

CREATE TABLE inbox_members (
    inbox_id INTEGER NOT NULL REFERENCES inboxes(id),
    agent_id INTEGER NOT NULL REFERENCES agents(id),
    PRIMARY KEY (inbox_id, agent_id)
);
CREATE INDEX inbox_members_agent ON inbox_members (agent_id);

-- Only the SHA-256 of a token is stored.
CREATE TABLE tokens (
    hash TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('agent', 'service')),
    agent_id INTEGER REFERENCES agents(id),
    name TEXT,
    device TEXT,
    created_at TEXT NOT NULL,
    expires_at TEXT,
    revoked_at TEXT
);
CREATE INDEX tokens_revoked ON tokens (revoked_at) WHERE revoked_at IS NOT NULL;

CREATE TABLE conversations (
    id INTEGER PRIMARY KEY,
    public_id TEXT NOT NULL UNIQUE,
    inbox_id INTEGER NOT NULL REFERENCES inboxes(id),
    visitor_name TEXT NOT NULL,
    visitor_token_hash TEXT UNIQUE,
    external_id TEXT UNIQUE,
    status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
    assignee_id INTEGER REFERENCES agents(id),
    created_at TEXT NOT NULL
);

CREATE TABLE messages (
    id INTEGER PRIMARY KEY,
    public_id TEXT NOT NULL UNIQUE,
    conversation_id INTEGER NOT NULL REFERENCES conversations(id),
    author_kind TEXT NOT NULL CHECK (author_kind IN ('visitor', 'agent', 'system')),
    author_agent_id INTEGER REFERENCES agents(id),
    author_name TEXT NOT NULL,
    body TEXT NOT NULL,
    client_msg_id TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX messages_conversation ON messages (conversation_id, id);
-- A retried send with the same client_msg_id stores nothing new.
CREATE UNIQUE INDEX messages_client_msg ON messages (conversation_id, author_kind, client_msg_id)
    WHERE client_msg_id IS NOT NULL;

-- What happened, once; notifications point at it, one row per recipient.
CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    category TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    conversation_id INTEGER REFERENCES conversations(id),
    url TEXT,
    data TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE notifications (
    agent_id INTEGER NOT NULL REFERENCES agents(id),
    seq INTEGER NOT NULL,
    event_id INTEGER NOT NULL REFERENCES events(id),
    category TEXT NOT NULL,
    conversation_id INTEGER,
    read INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (agent_id, seq)
) WITHOUT ROWID;
-- One row per recipient per event is the hot write: one B-tree for the rows (keyed by
-- agent and seq, which is also every read's order) and one small index of what is
-- still unread, which serves unread counts and marking read by category or conversation.
CREATE INDEX notifications_unread ON notifications (agent_id, category, conversation_id)
    WHERE read = 0;

-- Idempotency keys of publishes on /service, per service token name.
CREATE TABLE publish_keys (
    service TEXT NOT NULL,
    key TEXT NOT NULL,
    notifications INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (service, key)
);
