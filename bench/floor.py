"""The framework floor of the member API (#21, R-NFR-2): what one request costs on this stack before any coupon
logic — the project's middleware, its token authentication, a JSON body, one transactional INSERT, a small JSON
answer. Mounted only by the benchmark server (``bench.wsgi``), never by ``coupon_project.urls``.

Design: docs/design/benchmarks.md#framework-floor.
"""
from __future__ import annotations

from django.db import connection, transaction
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

FLOOR_PATH = "/api/v1/_bench/floor"

# Created in the benchmark's scratch database only (``create_floor_table``), so no migration ships it.
_TABLE = """CREATE TABLE IF NOT EXISTS bench_floor (
    id bigserial PRIMARY KEY, tenant_id bigint NOT NULL, member_id varchar(64) NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now())"""


def create_floor_table() -> None:
    with connection.cursor() as cursor:
        cursor.execute(_TABLE)


class FloorView(APIView):
    """DRF's APIView with the project's defaults (ApiTokenAuthentication, IsApiClient, the JSON parser and renderer):
    the body is parsed, one row is inserted in a transaction, and a small JSON object is answered."""

    def post(self, request: Request) -> Response:
        data = request.data if isinstance(request.data, dict) else {}
        member = str(data.get("member_id", ""))[:64]
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("INSERT INTO bench_floor (tenant_id, member_id) VALUES (%s, %s) RETURNING id",
                           [request.user.tenant_id, member])
            row_id = cursor.fetchone()[0]
        return Response({"id": row_id, "member_id": member}, status=status.HTTP_201_CREATED)
