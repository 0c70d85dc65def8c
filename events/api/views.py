"""Event participation endpoints of the member API (API.md "Events and draws")."""
from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from core.api.views import API_ERROR as ERROR, IDEMPOTENCY_PARAMETER, TenantAPIView
from core.audit import Actor
from core.identifiers import identifier_from_path, member_id_field
from events import services




def _errors(*statuses: int) -> dict[int, Any]:
    return {code: OpenApiResponse(ERROR) for code in statuses}


class JoinSerializer(serializers.Serializer):
    member_id = member_id_field()
    channel = serializers.ChoiceField(choices=services.CHANNELS, required=False, allow_blank=True, default="")


class ParticipantSerializer(serializers.Serializer):
    event = serializers.CharField(source="event.public_id")
    member_id = serializers.CharField()
    channel = serializers.CharField()
    entry_no = serializers.IntegerField()
    joined_at = serializers.DateTimeField()


class ParticipantsView(TenantAPIView):
    @extend_schema(operation_id="event_join", request=JoinSerializer, parameters=[IDEMPOTENCY_PARAMETER],
                   responses={201: ParticipantSerializer, **_errors(400, 404, 409, 422)},
                   description="A member joins an event. 409 already_joined (all entries per member used), "
                               "422 event_closed (not OPEN or outside its period), 422 limit_reached (max "
                               "participants), 422 not_eligible, 404 not_found (also for another tenant's event).")
    def post(self, request: Request, event_id: str) -> Response:
        serializer = JoinSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        participant = services.participant_join(tenant=self.tenant, event_public_id=event_id,
                                                member_id=data["member_id"], channel=data["channel"],
                                                actor=Actor.api_client(self.client))
        return Response(ParticipantSerializer(participant).data, status=status.HTTP_201_CREATED)


class ParticipantDetailView(TenantAPIView):
    @extend_schema(operation_id="event_leave", responses={204: None, **_errors(404, 422)},
                   description="Cancel the member's active entries. 404 if there are none; 422 event_closed once "
                               "the event is no longer open (the draw's participant list is final).")
    def delete(self, request: Request, event_id: str, member_id: str) -> Response:
        member_id = identifier_from_path(member_id, name="member_id")
        services.participant_cancel(tenant=self.tenant, event_public_id=event_id, member_id=member_id,
                                    actor=Actor.api_client(self.client))
        return Response(status=status.HTTP_204_NO_CONTENT)
