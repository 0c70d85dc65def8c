from django.core.management.base import CommandError
from django.utils.translation import gettext_lazy as _

from core.commands import BaseCommand
from core.audit import Actor
from core.exceptions import DomainError
from core.models import ApiClient, Tenant
from core.services import api_client_create


class Command(BaseCommand):
    help = _("Create an API client for a tenant and print its token once (it is stored only as a hash).")  # type: ignore[assignment]

    def add_arguments(self, parser):
        parser.add_argument("tenant", help=_("Tenant slug or name."))
        parser.add_argument("--scope", choices=ApiClient.Scope.values, default=ApiClient.Scope.MEMBER)
        parser.add_argument("--name", default="", help=_("Defaults to '<scope> client'."))

    def handle(self, *args, **opts):
        tenant = Tenant.objects.filter(slug=opts["tenant"]).first() or Tenant.objects.filter(
            name=opts["tenant"]).first()
        if tenant is None:
            raise CommandError(f"No tenant with slug or name {opts['tenant']!r}.")
        try:
            client, token = api_client_create(tenant=tenant, name=opts["name"] or f"{opts['scope']} client",
                                              scope=opts["scope"], actor=Actor.system("create_api_client"))
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        self.stderr.write(f"Created API client {client.name!r} ({client.scope}) for {tenant.name}. "
                          "The token below is shown only now; store it safely:")
        self.stdout.write(token)
