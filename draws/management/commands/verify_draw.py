"""Recompute a finished draw from the database and its revealed seed (R-DRAW-2). Exit status 1 on any mismatch."""
from django.core.management.base import CommandError
from django.utils.translation import gettext_lazy as _

from draws.models import Draw
from draws.services import draw_verify

from core.commands import BaseCommand


class Command(BaseCommand):
    help = _("Check sha256(seed) against the committed hash and recompute the winners; non-zero exit on mismatch.")  # type: ignore[assignment]

    def add_arguments(self, parser):
        parser.add_argument("draw_id", help=_("The draw's public id (or its numeric database id)."))

    def handle(self, *args, **opts):
        key = opts["draw_id"].strip()
        draw = Draw.objects.filter(public_id=key.upper()).first() or (
            Draw.objects.filter(pk=int(key)).first() if key.isdigit() else None)
        if draw is None:
            raise CommandError(f"No draw {key!r}.")
        result = draw_verify(draw=draw)
        for problem in result.problems:
            self.stderr.write(f"MISMATCH: {problem}")
        if not result.ok:
            raise CommandError(f"verify_draw: draw {draw.public_id} does NOT verify ({len(result.problems)} "
                               f"problem(s)).", returncode=1)
        self.stdout.write(f"verify_draw: draw {draw.public_id} OK — seed matches hash {draw.seed_hash}; "
                          f"{result.participants} participants, {result.winners} winners recomputed identically.")
