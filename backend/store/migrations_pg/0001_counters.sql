-- PostgreSQL-only additions to schema v1, applied right after the shared
-- backend/store/migrations/0001_initial.sql.
--
-- The SQLite store keeps each agent's last seq and unread counts in its single writer's
-- memory. Several PostgreSQL nodes write at once, so the counters live here instead,
-- one row per agent: a commit takes the row lock of every recipient (in agent-id
-- order, so two commits never deadlock) and moves seq and counts in the same statement
-- and transaction as the notifications. seq can then neither repeat nor skip, whichever
-- node commits. ``unread`` maps category to count; categories at 0 are left out.
CREATE TABLE agent_seq (
    agent_id BIGINT PRIMARY KEY REFERENCES agents(id),
    last_seq BIGINT NOT NULL,
    unread JSONB NOT NULL DEFAULT '{}'
);

-- Fan-out is the hot path (one event, a row per agent of an inbox), and checking two
-- foreign keys per row cost about 40 % of a 1,000-recipient commit. Both are implied
-- here: every notification's agent has its agent_seq row (which references agents)
-- bumped in the same statement's transaction, and its event was inserted just before.
-- An unknown recipient is still refused, by agent_seq's foreign key.
ALTER TABLE notifications
    DROP CONSTRAINT notifications_agent_id_fkey,
    DROP CONSTRAINT notifications_event_id_fkey;
