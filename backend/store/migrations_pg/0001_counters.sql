-- PostgreSQL-only additions to schema v1, applied right after the shared
-- backend/store/migrations/0001_initial.sql.
--
-- The SQLite store keeps each agent's last seq and unread counts in its single writer's
-- memory. Several PostgreSQL nodes write at once, so the counters live here instead:
-- a commit takes the agent_seq row lock of every recipient (in agent-id order, so two
-- commits never deadlock) and moves seq and counts in the same transaction as the
-- notifications. seq can then neither repeat nor skip, whichever node commits.
CREATE TABLE agent_seq (
    agent_id BIGINT PRIMARY KEY REFERENCES agents(id),
    last_seq BIGINT NOT NULL
);

CREATE TABLE agent_unread (
    agent_id BIGINT NOT NULL REFERENCES agents(id),
    category TEXT COLLATE "C" NOT NULL,
    unread BIGINT NOT NULL CHECK (unread >= 0),
    PRIMARY KEY (agent_id, category)
);
