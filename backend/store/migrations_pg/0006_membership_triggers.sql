-- PostgreSQL's triggers for schema v6 (see backend/store/migrations/0006_membership_version.sql).
-- Once per statement: an import that adds 500 memberships moves the version once.
CREATE FUNCTION deskbell_membership_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE membership_version SET version = version + 1;
    RETURN NULL;
END
$$;
CREATE TRIGGER membership_changed AFTER INSERT OR DELETE ON inbox_members
    FOR EACH STATEMENT EXECUTE FUNCTION deskbell_membership_changed();
CREATE TRIGGER membership_disabled AFTER UPDATE OF disabled_at ON agents
    FOR EACH STATEMENT EXECUTE FUNCTION deskbell_membership_changed();
CREATE TRIGGER membership_inbox_removed AFTER DELETE ON inboxes
    FOR EACH STATEMENT EXECUTE FUNCTION deskbell_membership_changed();
