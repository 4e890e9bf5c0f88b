-- SQLite-only addition to schema v1, applied right after the shared
-- backend/store/migrations/0001_initial.sql.
--
-- One event to N agents is N rows. Written straight into `notifications`, keyed by agent
-- then seq, each row lands on its own agent's page: one event to 1,000 agents rewrote
-- about 2,000 pages. The commit writes them here instead, keyed by event then agent, so
-- they append to a few pages; the store's single writer then moves them into
-- `notifications` in agent order a moment later, many events at once, so each agent's
-- page is written once per batch. Reads move what is here first, so they see every
-- committed notification. PostgreSQL commits straight into `notifications`.
CREATE TABLE fanout (
    event_id INTEGER NOT NULL,
    agent_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (event_id, agent_id)
) WITHOUT ROWID;
