"""Who did what: the actor of a state change and the audit row written in the same transaction."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction

from core.models import AuditLog, Tenant
from core.models import ApiClient


@dataclass(frozen=True)
class Actor:
    type: str
    id: str
    label: str

    @classmethod
    def user(cls, user: Any) -> Actor:
        return cls(AuditLog.ActorType.USER, str(user.pk), user.get_username())

    @classmethod
    def api_client(cls, client: Any) -> Actor:
        return cls(AuditLog.ActorType.API_CLIENT, str(client.pk), client.name)

    @classmethod
    def job(cls, name: str) -> Actor:
        return cls(AuditLog.ActorType.JOB, name, name)

    @classmethod
    def system(cls, label: str = "system") -> Actor:
        return cls(AuditLog.ActorType.SYSTEM, "", label)

    @classmethod
    def of(cls, principal: Any) -> Actor:
        """The actor for a request principal: a console user or an API client."""
        if isinstance(principal, Actor):
            return principal
        if isinstance(principal, ApiClient):
            return cls.api_client(principal)
        return cls.user(principal)


def audit_record(*, tenant: Tenant | None, actor: Actor, action: str, obj: Any, before: dict | None = None,
                 after: dict | None = None) -> AuditLog:
    """Write one audit row. Must be called inside the transaction of the change it records."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit_record must run inside the transaction of the change it records")
    return AuditLog.objects.create(
        tenant=tenant,
        actor_type=actor.type,
        actor_id=actor.id,
        actor_label=actor.label[:200],
        action=action,
        object_type=obj._meta.label,
        object_id=str(obj.pk),
        object_repr=str(obj)[:200],
        before=before,
        after=after,
    )


# The audit row of a one-statement write (the claim and the redemption): the same columns as ``audit_record``,
# filled by the statement's own SELECT. ``select`` yields, in order: tenant_id, object_id, object_repr, before,
# after; the actor comes from ``actor_params``.
AUDIT_COLUMNS = ("tenant_id, actor_type, actor_id, actor_label, action, object_type, object_id, object_repr, before, "
                 "after, created_at")


def audit_insert_sql(*, action: str, object_type: str, tenant: str, object_id: str, object_repr: str, before: str,
                     after: str, created_at: str, source: str) -> str:
    """``INSERT INTO core_auditlog … SELECT … FROM source``: SQL expressions for each value (the actor's are the
    ``%(actor_type)s``, ``%(actor_id)s`` and ``%(actor_label)s`` parameters, see ``actor_params``)."""
    return (f"INSERT INTO core_auditlog ({AUDIT_COLUMNS})\n"
            f"SELECT {tenant}, %(actor_type)s, %(actor_id)s, %(actor_label)s, '{action}', '{object_type}', "
            f"{object_id}, {object_repr}, {before}, {after}, {created_at}\n  FROM {source}")


def actor_params(actor: Actor) -> dict[str, str]:
    return {"actor_type": actor.type, "actor_id": actor.id, "actor_label": actor.label[:200]}
