"""Issue #17 (R-RISK-4, R-NFR-3): TRUNCATE of the audit log raises too (0002 covers UPDATE and DELETE, which a
statement-level TRUNCATE skips). Only the tables' owner — the role that runs migrations, which could drop the table
anyway, and the test runner's flush — may still empty it; the app role (README "Database roles") has no TRUNCATE
privilege, and this trigger refuses it even if someone grants one by mistake."""
from django.db import migrations

SQL = """
CREATE OR REPLACE FUNCTION core_auditlog_no_truncate() RETURNS trigger AS $$
BEGIN
    IF pg_has_role(current_user, (SELECT relowner FROM pg_class WHERE oid = TG_RELID), 'MEMBER') THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'core_auditlog is append-only: TRUNCATE is not allowed'
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER core_auditlog_no_truncate
    BEFORE TRUNCATE ON core_auditlog
    FOR EACH STATEMENT EXECUTE FUNCTION core_auditlog_no_truncate();
"""

REVERSE = """
DROP TRIGGER IF EXISTS core_auditlog_no_truncate ON core_auditlog;
DROP FUNCTION IF EXISTS core_auditlog_no_truncate();
"""


class Migration(migrations.Migration):
    dependencies = [("core", "0004_alter_tenant_options_user_language_and_more")]
    operations = [migrations.RunSQL(SQL, REVERSE)]
