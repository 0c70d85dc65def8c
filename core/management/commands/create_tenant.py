from django.core.management.base import CommandError
from django.utils.translation import gettext_lazy as _

from core.commands import BaseCommand
from core.audit import Actor
from core.exceptions import DomainError
from core.services import tenant_create


class Command(BaseCommand):
    help = _("Create a tenant (a customer organisation).")  # type: ignore[assignment]

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--slug", default="")
        parser.add_argument("--currency", default="KRW", help=_("ISO 4217 code (default KRW)."))
        parser.add_argument("--rounding-unit", type=int, default=1,
                            help=_("Computed amounts round down to a multiple of this (e.g. 10 for KRW)."))
        parser.add_argument("--time-zone", default="Asia/Seoul")
        parser.add_argument("--language", choices=["ko", "en"], default="ko")

    def handle(self, *args, **opts):
        try:
            tenant = tenant_create(name=opts["name"], slug=opts["slug"], currency=opts["currency"],
                                   rounding_unit=opts["rounding_unit"], time_zone=opts["time_zone"],
                                   language=opts["language"], actor=Actor.system("create_tenant"))
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"Created tenant {tenant.name!r} (slug {tenant.slug}, id {tenant.pk}).")
