from django.db import connection
from django.utils.translation import gettext_lazy as _

from core.commands import BaseCommand
from core.keys import citus_plan


class Command(BaseCommand):
    help = _("Print the SQL that distributes this database by tenant on a Citus coordinator: foreign keys dropped, "  # type: ignore[assignment]
             "tenant tables distributed and co-located, the rest as reference tables, foreign keys back "
             "(docs/SCALING.md). Runs nothing.")

    def handle(self, *args, **opts):
        for statement in citus_plan(connection):
            self.stdout.write(statement if statement.startswith("--") else statement + ";")
