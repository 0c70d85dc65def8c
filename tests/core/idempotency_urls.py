"""A test-only endpoint with a visible effect (an audit row) to exercise the Idempotency-Key protocol."""
from __future__ import annotations

import threading

from django.db import connection, transaction
from django.urls import include, path
from rest_framework.response import Response

from core.audit import Actor, audit_record
from core.api.views import TenantAPIView
from core.exceptions import BusinessRuleViolation

entered = threading.Event()
release = threading.Event()
fail_next = {"count": 0}


class EffectView(TenantAPIView):
    def post(self, request):
        if request.data.get("block"):
            entered.set()
            assert release.wait(10), "test never released the blocked request"
        if request.data.get("reject"):
            raise BusinessRuleViolation("Nope.", code="sold_out")
        if fail_next["count"] > 0:
            fail_next["count"] -= 1
            raise RuntimeError("simulated crash after the effect")
        with transaction.atomic():
            row = audit_record(tenant=self.tenant, actor=Actor.api_client(self.client), action="test.effect",
                               obj=self.client, after=dict(request.data))
        return Response({"effect": row.pk, "echo": request.data, "backend": connection.vendor}, status=201)


urlpatterns = [
    path("effect", EffectView.as_view()),
    path("api/v1/", include("core.api.urls")),
]
