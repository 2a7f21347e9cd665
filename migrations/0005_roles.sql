-- Two roles, so that analysts and workers get only what they need:
--
--  * the reader may SELECT the events, their partitions, the CIS views, the
--    ledger, the rejects and the migration history, and nothing else;
--  * the writer (the workers' role) may insert events and rejects, insert and
--    update ledger rows, create its temporary staging table, and create and
--    drop partitions only through pgtrail_ensure_partition and
--    pgtrail_drop_partitions_before. It cannot drop, alter, truncate or
--    delete.
--
-- Both are NOLOGIN group roles: grant them to login roles (docs/analysts.md).
-- Their names come from the settings pgtrail.reader_role and
-- pgtrail.writer_role, which pgtrail migrate sets from PGTRAIL_READER_ROLE
-- and PGTRAIL_WRITER_ROLE; run by hand, this file uses the defaults
-- pgtrail_reader and pgtrail_writer. A role that exists is used as it is.
--
-- Roles belong to the whole server, so several databases may migrate at
-- once and race to create the same role: the loser takes the winner's.
-- Everything here works for a non-superuser owner (as on Amazon RDS) that
-- has CREATEROLE, or for one without it once an administrator has created
-- the two roles.
DO $$
DECLARE
    reader text := coalesce(nullif(current_setting('pgtrail.reader_role', true), ''), 'pgtrail_reader');
    writer text := coalesce(nullif(current_setting('pgtrail.writer_role', true), ''), 'pgtrail_writer');
    r text;
    part regclass;
BEGIN
    IF reader = writer THEN
        RAISE EXCEPTION 'pgtrail: the reader and the writer role must differ, both are %', reader;
    END IF;
    FOREACH r IN ARRAY ARRAY[reader, writer] LOOP
        CONTINUE WHEN EXISTS (SELECT FROM pg_roles WHERE rolname = r);
        BEGIN
            EXECUTE format('CREATE ROLE %I NOLOGIN', r);
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN
                NULL; -- another database's migration created it meanwhile
            WHEN insufficient_privilege THEN
                RAISE EXCEPTION 'pgtrail: cannot create role %: %', r, SQLERRM
                    USING HINT = format('Have an administrator run CREATE ROLE %I NOLOGIN, or grant CREATEROLE to %I, and migrate again.', r, current_user);
        END;
    END LOOP;

    -- Reader: SELECT only.
    EXECUTE format('GRANT SELECT ON cloudtrail_events, cloudtrail_rejects, cloudtrail_objects,
        pgtrail_schema_migrations, ct_cis_findings, ct_unauthorized_calls, ct_console_logins_without_mfa,
        ct_root_account_usage, ct_iam_policy_changes, ct_cloudtrail_changes, ct_console_login_failures,
        ct_kms_key_disabled_or_deleted, ct_s3_bucket_policy_changes, ct_config_changes,
        ct_security_group_changes, ct_nacl_changes, ct_network_gateway_changes, ct_route_table_changes,
        ct_vpc_changes, ct_organizations_changes TO %I', reader);

    -- Writer: INSERT … ON CONFLICT and RETURNING need SELECT; the ledger
    -- upsert needs UPDATE; the rejects' identity needs its sequence.
    EXECUTE format('GRANT SELECT, INSERT ON cloudtrail_events, cloudtrail_rejects TO %I', writer);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE ON cloudtrail_objects TO %I', writer);
    EXECUTE format('GRANT SELECT ON pgtrail_schema_migrations TO %I', writer);
    EXECUTE format('GRANT USAGE ON SEQUENCE %s TO %I', pg_get_serial_sequence('cloudtrail_rejects', 'id'), writer);

    -- Partitions that exist already; new ones copy the parent's grants.
    FOR part IN SELECT inhrelid::regclass FROM pg_inherits WHERE inhparent = 'cloudtrail_events'::regclass LOOP
        EXECUTE format('GRANT SELECT ON %s TO %I', part, reader);
        EXECUTE format('GRANT SELECT, INSERT ON %s TO %I', part, writer);
    END LOOP;

    -- The partition functions run with the owner's rights: only the writer
    -- (and the owner) may call them.
    REVOKE ALL ON FUNCTION pgtrail_ensure_partition(date) FROM PUBLIC;
    REVOKE ALL ON FUNCTION pgtrail_drop_partitions_before(date, boolean) FROM PUBLIC;
    EXECUTE format('GRANT EXECUTE ON FUNCTION pgtrail_ensure_partition(date) TO %I', writer);
    EXECUTE format('GRANT EXECUTE ON FUNCTION pgtrail_drop_partitions_before(date, boolean) TO %I', writer);

    -- The schema and the database: PUBLIC usually has these already; grant
    -- them where it does not and the owner may.
    FOREACH r IN ARRAY ARRAY[reader, writer] LOOP
        IF NOT has_schema_privilege(r, current_schema(), 'USAGE') THEN
            EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', current_schema(), r);
        END IF;
        IF NOT has_database_privilege(r, current_database(), 'CONNECT') THEN
            EXECUTE format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), r);
        END IF;
    END LOOP;
    -- The writer's staging table is a temporary table.
    IF NOT has_database_privilege(writer, current_database(), 'TEMPORARY') THEN
        EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO %I', current_database(), writer);
    END IF;
END
$$;
