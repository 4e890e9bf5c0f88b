-- SQLite's triggers for schema v6 (see backend/store/migrations/0006_membership_version.sql).
CREATE TRIGGER membership_joined AFTER INSERT ON inbox_members
BEGIN
    UPDATE membership_version SET version = version + 1;
END;
CREATE TRIGGER membership_left AFTER DELETE ON inbox_members
BEGIN
    UPDATE membership_version SET version = version + 1;
END;
CREATE TRIGGER membership_disabled AFTER UPDATE OF disabled_at ON agents
BEGIN
    UPDATE membership_version SET version = version + 1;
END;
CREATE TRIGGER membership_inbox_removed AFTER DELETE ON inboxes
BEGIN
    UPDATE membership_version SET version = version + 1;
END;
