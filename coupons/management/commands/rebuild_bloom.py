"""Rebuild the per-tenant Bloom filters from the database:
``manage.py rebuild_bloom [--tenant SLUG] [--capacity N] [--error-rate P]``.

One filter per tenant (issue #23). Needed after Redis lost data, to resize a filter that has grown past its capacity,
to drop the bits of deleted codes — and once after deploying issue #23, which replaced the single global filter by
per-tenant ones (it also removes the old global key). ``--check`` only probes the filters with sample codes. Each
tenant's rebuild waits for that tenant's running generations (they hold its writers' lock) and blocks new ones while
it scans its codes (R-CODE-3); other tenants are not held up.
"""
from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.management.base import CommandError
from django.utils.translation import gettext_lazy as _
from tqdm import tqdm

from coupons.bloom import bloom_rebuild, bloom_verify
from core.models import Tenant

from core.commands import BaseCommand


class Command(BaseCommand):
    help = _("Rebuild (or --check) the Bloom filters, one per tenant, over every coupon code.")

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--tenant", help=_("Tenant slug: only this tenant's filter (default: every tenant)."))
        parser.add_argument("--capacity", type=int, default=None,
                            help=f"Codes each filter is sized for (default: BLOOM_CAPACITY={settings.BLOOM_CAPACITY},"
                                 " or twice the codes the tenant's batches plan when that is more).")
        parser.add_argument("--error-rate", type=float, default=None,
                            help=f"False-positive rate at capacity (default {settings.BLOOM_ERROR_RATE}).")
        parser.add_argument("--check", action="store_true", help=_("Only verify the filter against sample codes."))
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args: Any, **opts: Any) -> None:
        tenant_id = None
        if opts["tenant"]:
            tenant = Tenant.objects.filter(slug=opts["tenant"]).first()
            if tenant is None:
                raise CommandError(f"No tenant with the slug {opts['tenant']!r}.")
            tenant_id = tenant.pk
        if opts["check"]:
            result = bloom_verify(tenant_id=tenant_id)
            self.stdout.write(json.dumps(result))
            if not result["exists"]:
                raise CommandError("There is no Bloom filter yet; run `manage.py rebuild_bloom`.")
            if result["missing"]:
                raise CommandError(f"{result['missing']} existing codes are missing from the filter: rebuild it.")
            return
        if opts["capacity"] is not None and opts["capacity"] < 1000:
            raise CommandError("--capacity must be at least 1000.")
        if opts["error_rate"] is not None and not 0 < opts["error_rate"] < 0.5:
            raise CommandError("--error-rate must be between 0 and 0.5.")
        with tqdm(unit="code", unit_scale=True, desc="codes", disable=opts["no_progress"]) as bar:
            try:
                result = bloom_rebuild(tenant_id=tenant_id, capacity=opts["capacity"], error_rate=opts["error_rate"],
                                       progress=bar.update)
            except ValueError as exc:
                raise CommandError(str(exc)) from exc
        self.stdout.write(json.dumps(result))
