"""Two database roles (issue #17, README "Database roles"): the *owner* runs migrations and owns every table; the
*app role* serves requests and runs jobs with data privileges only.

Design: docs/design/jobs-and-operations.md#core-dbroles.
"""
from __future__ import annotations

from django.db import connection

AUDIT_TABLE = "core_auditlog"


def app_role_statements(role: str, *, schema: str = "public") -> list[str]:
    """The GRANT/REVOKE statements that give ``role`` what the app needs and nothing more. Run them as the owner
    after every migration (new tables), or rely on the default privileges they set for tables created later."""
    r, s = connection.ops.quote_name(role), connection.ops.quote_name(schema)
    database = connection.ops.quote_name(connection.settings_dict["NAME"])
    statements = [
        f"GRANT CONNECT, TEMPORARY ON DATABASE {database} TO {r}",
        f"GRANT USAGE ON SCHEMA {s} TO {r}",
        f"REVOKE CREATE ON SCHEMA {s} FROM {r}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {s} TO {r}",
        f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA {s} TO {r}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {s} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {r}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {s} GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {r}",
        f"REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON {s}.{AUDIT_TABLE} FROM {r}",
        f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON {s}.django_migrations FROM {r}",
        # ANALYZE of a new batch's codes by the generation job, as the tables' owner (migration coupons 0012).
        f"GRANT EXECUTE ON FUNCTION {s}.coupons_analyze_codes(bigint, bigint) TO {r}",
    ]
    if connection.pg_version >= 150000:  # type: ignore[attr-defined]  # PostgreSQL backend only
        statements.append(f"REVOKE SET ON PARAMETER session_replication_role FROM {r}")
    return statements


def role_problems(role: str) -> list[str]:
    """Why ``role`` is not fit to be the app role (empty: fit)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolsuper, rolcreaterole, rolcreatedb, rolbypassrls FROM pg_roles WHERE rolname = %s",
                       [role])
        row = cursor.fetchone()
        if row is None:
            return [f"role {role!r} does not exist (CREATE ROLE {role} LOGIN PASSWORD '…' as the owner first)"]
        problems = [text for flag, text in zip(row, ("is a superuser", "may create roles", "may create databases",
                                                      "bypasses row-level security"), strict=True) if flag]
        cursor.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tableowner = %s", [role])
        owned = cursor.fetchone()[0]
    if owned:
        problems.append(f"owns {owned} table(s); the owner is the migration role")
    return problems
