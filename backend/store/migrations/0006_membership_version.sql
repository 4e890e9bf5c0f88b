-- Deskbell schema v6: a count of membership changes.
--
-- Every publish to an inbox needs its members. Nodes keep them in memory and, per
-- publish, read only this one row: while `version` has not moved, nobody joined, left,
-- was disabled or enabled, and no inbox was removed, whichever process (a node, the
-- operator's CLI) did it. Triggers of each store move it (migrations_sqlite and
-- migrations_pg, version 6), so no code path can change membership without it.
CREATE TABLE membership_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
);
INSERT INTO membership_version (id, version) VALUES (1, 0);
