"""The draws of an event in the member API (API.md "Events and draws")."""
from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from core.api.views import API_ERROR as ERROR, TenantAPIView
from draws import selectors
from draws.models import Draw, PrizeTier
from events.exceptions import EventNotFound


DRAW_FIELDS: dict[str, serializers.Field] = {
    "id": serializers.CharField(), "name": serializers.CharField(), "round": serializers.IntegerField(),
    "parent": serializers.CharField(allow_null=True),
    "status": serializers.ChoiceField(choices=Draw.Status.choices), "draw_at": serializers.DateTimeField(),
    "committed_at": serializers.DateTimeField(allow_null=True),
    "seed_hash": serializers.CharField(allow_null=True, help_text="sha256 hex of the seed, published at commit."),
    "seed": serializers.CharField(allow_null=True, help_text="The 32-byte seed in hex, revealed once DONE."),
    "participants_count": serializers.IntegerField(allow_null=True),
    "participants_digest": serializers.CharField(allow_null=True),
    "finished_at": serializers.DateTimeField(allow_null=True),
    "tiers": inline_serializer("DrawTier", {"position": serializers.IntegerField(), "name": serializers.CharField(),
                                            "winners": serializers.IntegerField()}, many=True),
    "winners": inline_serializer("DrawWinnerRow", {
        "member_id": serializers.CharField(), "tier": serializers.IntegerField(help_text="Tier position."),
        "rank": serializers.IntegerField(), "forfeited": serializers.BooleanField()}, many=True),
}


def _draw_payload(draw: Draw, tiers: list[PrizeTier], winners: list[dict[str, Any]]) -> dict[str, Any]:
    done = draw.status == Draw.Status.DONE
    return {
        "id": draw.public_id, "name": draw.name, "round": draw.round,
        "parent": draw.parent.public_id if draw.parent is not None else None, "status": draw.status,
        "draw_at": draw.draw_at, "committed_at": draw.committed_at, "seed_hash": draw.seed_hash or None,
        "seed": draw.seed if done else None,
        "participants_count": draw.participants_count if done else None,
        "participants_digest": (draw.participants_digest or None) if done else None,
        "finished_at": draw.finished_at if done else None,
        "tiers": [{"position": t.position, "name": t.name, "winners": t.winners} for t in tiers],
        "winners": winners if done else [],
    }


class EventDrawsView(TenantAPIView):
    @extend_schema(operation_id="event_draws",
                   responses={200: inline_serializer("Draw", DRAW_FIELDS, many=True), 404: OpenApiResponse(ERROR)},
                   description="The event's draws, oldest round first: status and the seed hash (published before "
                               "the draw); once DONE also the revealed seed and the winners.")
    def get(self, request: Request, event_id: str) -> Response:
        found = selectors.event_draws(tenant=self.tenant, event_public_id=event_id)
        if found is None:
            raise EventNotFound()
        return Response([_draw_payload(d, found.tiers.get(d.pk, []), found.winners.get(d.pk, []))
                         for d in found.draws])
