"""``Idempotency-Key`` for every API POST (API.md, Conventions), in PostgreSQL only.

Invariant: the effect and the stored response commit in the same transaction.
Design: docs/design/claims-and-limits.md#core-api-idempotency.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import OperationalError, transaction
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy as _
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from core.api.bodies import canonical_json
from core.exceptions import DomainError, InvalidInput
from core.locks import release_after_transaction
from core.models import ApiClient, IdempotencyRecord
from core.tenancy import save_in_tenant

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255


class KeyReused(DomainError):
    code = "idempotency_key_reused"
    status = 422
    default_message = _("This Idempotency-Key was already used with a different request body.")


class RequestInProgress(DomainError):
    code = "request_in_progress"
    status = 409
    default_message = _("A request with this Idempotency-Key is still being processed; retry later.")


def request_fingerprint(request: Request) -> str:
    """SHA-256 over method, path and body (JSON in canonical form, issue #17). Multipart bodies hash their fields
    and file contents, streamed."""
    digest = hashlib.sha256()
    digest.update((request.method or "").encode() + b" " + request.path.encode() + b"\n")
    content_type = request.content_type or ""
    if content_type.startswith("multipart/"):
        for name in sorted(request.data.keys()):
            for value in request.data.getlist(name):  # type: ignore[attr-defined]  # multipart: a QueryDict
                digest.update(f"{name}=".encode())
                if hasattr(value, "chunks"):
                    for chunk in value.chunks():
                        digest.update(chunk)
                    value.seek(0)
                else:
                    digest.update(str(value).encode())
                digest.update(b"\n")
    else:
        # Canonical JSON (sorted keys, normalised numbers): a retry that reorders keys is the same request (#17).
        digest.update(canonical_json(request.body) or request.body)
    return digest.hexdigest()


def run_idempotent(request: Request, client: ApiClient, handler: Callable[[], Response]) -> Response:
    key = request.headers.get(HEADER, "")
    if len(key) > MAX_KEY_LENGTH or not key.strip():
        message = gettext("%(header)s must be 1 to %(max)d characters.") % {"header": HEADER, "max": MAX_KEY_LENGTH}
        raise InvalidInput(message, code="invalid_idempotency_key")
    fingerprint = request_fingerprint(request)
    now = timezone.now()
    IdempotencyRecord.objects.bulk_create(
        [IdempotencyRecord(tenant_id=client.tenant_id, client=client, key=key, request_hash=fingerprint,
                           created_at=now)],
        ignore_conflicts=True,
    )
    # Locks the handler takes (the member's claim lock) are freed only after this transaction ends (issue #18).
    with release_after_transaction(), transaction.atomic():
        try:
            record = IdempotencyRecord.objects.select_for_update(nowait=True).get(
                tenant_id=client.tenant_id, client=client, key=key)
        except OperationalError as exc:  # lock held: the first request is still running
            raise RequestInProgress() from exc
        expired = now - record.created_at > timedelta(seconds=settings.IDEMPOTENCY_TTL_SECONDS)
        if expired:
            record.status, record.request_hash, record.created_at = IdempotencyRecord.Status.IN_PROGRESS, fingerprint, now
            record.response_status, record.response_body = None, ""
        elif record.request_hash != fingerprint:
            raise KeyReused()
        elif record.status == IdempotencyRecord.Status.DONE:
            replay = Response(json.loads(record.response_body) if record.response_body else None,
                              status=record.response_status)
            replay["Idempotent-Replayed"] = "true"
            return replay
        response = handler()
        if response.status_code >= 500:
            transaction.set_rollback(True)
            return response
        record.status = IdempotencyRecord.Status.DONE
        record.response_status = response.status_code
        record.response_body = JSONRenderer().render(response.data).decode() if response.data is not None else ""
        # The row is locked above; the UPDATE names its tenant (#23).
        save_in_tenant(record, "status", "request_hash", "created_at", "response_status", "response_body")
        return response


def purge_expired_idempotency_records() -> int:
    cutoff = timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_TTL_SECONDS)
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted
