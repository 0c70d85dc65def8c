from django.core.management.base import CommandError
from django.db import connection, transaction
from django.utils.translation import gettext_lazy as _

from core.commands import BaseCommand
from core.dbroles import app_role_statements, role_problems


class Command(BaseCommand):
    help = _("Print (or with --apply run, as the tables' owner) the grants of the app's database role: data "  # type: ignore[assignment]
             "privileges only, no TRUNCATE/UPDATE/DELETE on the audit log (README \"Database roles\").")

    def add_arguments(self, parser):
        parser.add_argument("role", help=_("The role the app serves as (DATABASE_URL's user in production)."))
        parser.add_argument("--apply", action="store_true", help=_("Run the statements (default: print them)."))

    def handle(self, *args, **opts):
        role = opts["role"]
        problems = role_problems(role)
        if problems:
            raise CommandError(f"{role}: " + "; ".join(problems))
        statements = app_role_statements(role)
        if not opts["apply"]:
            self.stdout.write(";\n".join(statements) + ";")
            self.stdout.write(f"grant_app_role: role={role} statements={len(statements)} dry_run=yes")
            return
        with transaction.atomic(), connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
        self.stdout.write(f"grant_app_role: role={role} statements={len(statements)}")
