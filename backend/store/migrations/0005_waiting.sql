-- Deskbell schema v5: waiting visitors (protocol v1.1).

-- When the visitor message that no agent reply has followed was sent; NULL when the
-- conversation is not waiting. Set and cleared in the transaction that stores the
-- message (or resolves the conversation), so every node sees one answer.
ALTER TABLE conversations ADD COLUMN waiting_since TEXT;
CREATE INDEX conversations_waiting ON conversations (inbox_id, waiting_since)
    WHERE waiting_since IS NOT NULL;

-- An inbox's escalation policy; an inbox without a row has no steps and the default
-- unseen_after_s.
CREATE TABLE inbox_policies (
    inbox_id INTEGER NOT NULL PRIMARY KEY REFERENCES inboxes(id),
    unseen_after_s INTEGER NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE policy_steps (
    inbox_id INTEGER NOT NULL REFERENCES inboxes(id),
    step INTEGER NOT NULL,
    after_s INTEGER NOT NULL,
    target TEXT NOT NULL,
    PRIMARY KEY (inbox_id, step)
);

-- The steps of each wait still to fire, copied from the policy when the wait started
-- (a policy change applies to later waits). A row is deleted by whoever fires it, in
-- the transaction that stores its notifications, or when the wait ends: a step fires
-- at most once and never after its wait. due_ms: milliseconds since the Unix epoch.
CREATE TABLE wait_steps (
    conversation_id INTEGER NOT NULL REFERENCES conversations(id),
    step INTEGER NOT NULL,
    waiting_since TEXT NOT NULL,
    due_ms INTEGER NOT NULL,
    target TEXT NOT NULL,
    early INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (conversation_id, step)
);
CREATE INDEX wait_steps_due ON wait_steps (due_ms);

-- Early escalation: one row per chat notification (created, visitor message) of a
-- waiting, unassigned conversation that still has a step to fire, due unseen_after_s
-- after it was stored. `seen` turns 1 when any recipient reports it shown or clicked.
-- Whoever deletes a due row decides whether it brings the next step forward.
CREATE TABLE seen_checks (
    event_id INTEGER NOT NULL PRIMARY KEY,
    conversation_id INTEGER NOT NULL REFERENCES conversations(id),
    waiting_since TEXT NOT NULL,
    due_ms INTEGER NOT NULL,
    seen INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX seen_checks_due ON seen_checks (due_ms);
CREATE INDEX seen_checks_conversation ON seen_checks (conversation_id);
