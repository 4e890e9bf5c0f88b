-- Deskbell schema v3: the operator's agent lifecycle (agent disable/enable/remove).
--
-- A disabled agent keeps its row, memberships, notifications and tokens' history, but
-- cannot sign in or get tokens, and is left out of routing until enabled again.
ALTER TABLE agents ADD COLUMN disabled_at TEXT;
-- Routing leaves disabled agents out of every inbox's members: a tiny index, since
-- hardly any agent is disabled at a time.
CREATE INDEX agents_disabled ON agents (id) WHERE disabled_at IS NOT NULL;
-- Disabling an agent, setting its password or removing it revokes all its live tokens.
CREATE INDEX tokens_agent ON tokens (agent_id) WHERE revoked_at IS NULL;
-- `inbox list` counts each inbox's conversations; `inbox remove` finds them.
CREATE INDEX conversations_inbox ON conversations (inbox_id);
