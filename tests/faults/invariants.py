"""The invariants the fault suite checks after every fault (issue #18), straight from the throwaway database.

1. no code with two owners — one issue row per code, the code's member is its issue's member, one partner mapping
   per code;
2. at most one active (un-refunded) usage per code;
3. counters equal to rows — inventory counter shards vs issue and usage rows (``ops.reconcile``'s query), a batch's
   ``generated_count`` vs its codes, an upload's ``mapped``/``failed`` vs its mapping and failure rows;
4. every 2xx answer's effect is present — each answer the test received is looked up;
5. every stored idempotent answer's effect is present — each DONE ``Idempotency-Key`` record with a 2xx answer.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import psycopg


@dataclass
class Answers:
    """The 2xx answers a fault test received, to check their effects afterwards."""

    claims: list[tuple[str, str]] = field(default_factory=list)  # (code, member)
    redeems: list[tuple[str, str]] = field(default_factory=list)  # (code, order_id)

    def record(self, kind: str, response: Any, request: dict[str, Any]) -> None:
        if not 200 <= response.status_code < 300:
            return
        body = response.json()
        if kind == "claim":
            self.claims.append((body["coupon"]["code"], request["member_id"]))
        elif kind == "redeem":
            self.redeems.append((body["coupon"]["code"], request["order_id"]))


def _rows(conn: psycopg.Connection, sql: str, params: Any = None) -> list[tuple]:
    return conn.execute(sql, params).fetchall()


def check(db_url: str, answers: Answers | None = None) -> dict[str, int]:
    """Raise AssertionError naming every violated invariant; return what was checked."""
    problems: list[str] = []
    with psycopg.connect(db_url.replace("postgres://", "postgresql://", 1), autocommit=True) as conn:
        two_owners = _rows(conn, "SELECT coupon_id FROM coupons_couponissue GROUP BY 1 HAVING count(*) > 1")
        wrong_owner = _rows(conn, """
            SELECT c.code FROM coupons_couponcode c JOIN coupons_couponissue i ON i.coupon_id = c.id
             WHERE c.member_id IS DISTINCT FROM i.member_id""")
        owned_without_issue = _rows(conn, """
            SELECT c.code FROM coupons_couponcode c
             WHERE c.status IN ('ISSUED', 'LOCKED', 'USED')
               AND NOT EXISTS (SELECT 1 FROM coupons_couponissue i WHERE i.coupon_id = c.id)""")
        double_mapped = _rows(conn, "SELECT coupon_id FROM partners_couponmapping GROUP BY 1 HAVING count(*) > 1")
        if two_owners or wrong_owner or owned_without_issue or double_mapped:
            problems.append(f"codes with two owners: issues={two_owners[:5]} wrong_owner={wrong_owner[:5]} "
                            f"owned_without_issue={owned_without_issue[:5]} double_mapped={double_mapped[:5]}")

        double_use = _rows(conn, """SELECT coupon_id FROM coupons_couponusage WHERE refunded_at IS NULL
                                    GROUP BY 1 HAVING count(*) > 1""")
        used_without_usage = _rows(conn, """
            SELECT c.code FROM coupons_couponcode c WHERE c.status = 'USED'
               AND NOT EXISTS (SELECT 1 FROM coupons_couponusage u WHERE u.coupon_id = c.id AND u.refunded_at IS NULL)""")
        if double_use or used_without_usage:
            problems.append(f"codes used twice: {double_use[:5]}; USED without a usage: {used_without_usage[:5]}")

        counters = _rows(conn, """
            WITH issued AS (SELECT inventory_id, count(*) n FROM coupons_couponissue GROUP BY 1),
                 used AS (SELECT inventory_id, count(*) n, coalesce(sum(discount), 0) d FROM coupons_couponusage
                           WHERE refunded_at IS NULL GROUP BY 1),
                 counted AS (SELECT inventory_id, sum(issued) i, sum(used) u, sum(used_discount) d
                               FROM coupons_inventorycounter GROUP BY 1)
            SELECT inv.id, coalesce(issued.n, 0), coalesce(counted.i, 0), coalesce(used.n, 0), coalesce(counted.u, 0),
                   coalesce(used.d, 0), coalesce(counted.d, 0)
              FROM coupons_couponinventory inv LEFT JOIN issued ON issued.inventory_id = inv.id
              LEFT JOIN used ON used.inventory_id = inv.id LEFT JOIN counted ON counted.inventory_id = inv.id
             WHERE coalesce(issued.n, 0) <> coalesce(counted.i, 0) OR coalesce(used.n, 0) <> coalesce(counted.u, 0)
                OR coalesce(used.d, 0) <> coalesce(counted.d, 0)""")
        batches = _rows(conn, """
            SELECT b.id, b.generated_count, (SELECT count(*) FROM coupons_couponcode c WHERE c.batch_id = b.id)
              FROM coupons_couponbatch b
             WHERE b.generated_count <> (SELECT count(*) FROM coupons_couponcode c WHERE c.batch_id = b.id)""")
        uploads = _rows(conn, """
            SELECT u.id, u.mapped, u.failed FROM partners_partnerupload u
             WHERE u.mapped <> (SELECT count(*) FROM partners_couponmapping m WHERE m.upload_id = u.id)
                OR u.failed <> (SELECT count(*) FROM partners_partneruploadfailure f WHERE f.upload_id = u.id)
                OR u.processed_rows <> u.mapped + u.failed""")
        if counters or batches or uploads:
            problems.append(f"counters differ from rows: inventories={counters[:5]} batches={batches[:5]} "
                            f"uploads={uploads[:5]}")

        answered = answers or Answers()
        missing = []
        for code, member in answered.claims:
            if not _rows(conn, """SELECT 1 FROM coupons_couponcode c JOIN coupons_couponissue i ON i.coupon_id = c.id
                                  WHERE c.code = %s AND i.member_id = %s""", [code, member]):
                missing.append(("claim", code, member))
        for code, order in answered.redeems:
            if not _rows(conn, """SELECT 1 FROM coupons_couponusage u JOIN coupons_couponcode c ON c.id = u.coupon_id
                                  WHERE c.code = %s AND u.order_id = %s""", [code, order]):
                missing.append(("redeem", code, order))
        if missing:
            problems.append(f"2xx answers without their effect: {missing[:5]} ({len(missing)})")

        stored = _rows(conn, """SELECT response_body FROM core_idempotencyrecord
                                 WHERE status = 'done' AND response_status BETWEEN 200 AND 299""")
        lost = []
        for (body,) in stored:
            data = json.loads(body) if body else None
            coupon = data.get("coupon") if isinstance(data, dict) else None
            if not isinstance(coupon, dict):
                continue
            if "usage" in data:
                found = _rows(conn, """SELECT 1 FROM coupons_couponusage u JOIN coupons_couponcode c
                                       ON c.id = u.coupon_id WHERE c.code = %s""", [coupon["code"]])
            else:
                found = _rows(conn, """SELECT 1 FROM coupons_couponcode c JOIN coupons_couponissue i
                                       ON i.coupon_id = c.id WHERE c.code = %s AND i.member_id = %s""",
                              [coupon["code"], coupon["member_id"]])
            if not found:
                lost.append(coupon["code"])
        if lost:
            problems.append(f"stored idempotent answers without their effect: {lost[:5]} ({len(lost)})")
    assert not problems, "; ".join(problems)
    return {"claims": len(answered.claims), "redeems": len(answered.redeems), "stored_answers": len(stored)}
