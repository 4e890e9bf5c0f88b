-- Deskbell schema v4: single sign-on and the tray app versions agents run.

-- The nonce of every ID token exchanged by `sso_login` (its SHA-256, as the token
-- carries it), kept until the token would have expired: a second exchange of the same
-- token is a replay and is refused, on every node.
CREATE TABLE sso_nonces (
    nonce_hash TEXT PRIMARY KEY,
    expires_at TEXT NOT NULL
);
CREATE INDEX sso_nonces_expiry ON sso_nonces (expires_at);

-- Version and OS the tray app sends in its /agent handshake; one row per agent, version
-- and OS, seen_at the last connection that sent them (`agent list` shows the last day).
CREATE TABLE client_versions (
    agent_id INTEGER NOT NULL REFERENCES agents(id),
    version TEXT NOT NULL,
    os TEXT NOT NULL,
    seen_at TEXT NOT NULL,
    PRIMARY KEY (agent_id, version, os)
);
CREATE INDEX client_versions_seen ON client_versions (seen_at);
