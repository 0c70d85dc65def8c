"""R-TEN-1 (issue #8, must show): a route × method matrix generated from the URL configuration.

Every API endpoint (``api/…``) and every console view (``admin/…``, including views added through ``get_urls`` and
console pages of other apps mounted under ``admin/``) is exercised as tenant A — an operator API token of A, a console
user of A with every role — against tenant B's objects: URL kwargs are filled with B's ids / public ids / codes /
member ids. Object routes must answer 404 or 403 (405 for a method the view refuses; in the console, Django's "does
not exist" redirect to the index), list routes may answer but only with A's rows; no answer may contain any of B's
identifiers (codes, public ids, member ids, names with the ``SECRETB`` marker), and B's object must be unchanged.

Coverage is enforced: a route without a case in ``CASES`` (keyed by URL name; unnamed routes by their pattern) makes
``test_every_route_has_a_case`` and the matrix fail, naming the route. Standard ModelAdmin routes (changelist, add,
change, delete, history, export/import) get their case from the admin registry and the tenant-B object that
``b_objects`` (tests/core/test_console_tenant_isolation.py) already requires for every tenant-owned model admin.
Views added with ``get_urls`` and every other page must be added to ``CASES`` by whoever adds the route.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.contrib import admin
from django.core.files.uploadedfile import SimpleUploadedFile
from django.forms.models import model_to_dict
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.test import APIClient

from core.models import ApiClient
from tests import factories
from tests.core.test_console_tenant_isolation import SECRET, a_user, b_objects  # noqa: F401 (fixtures)

NOT_FOUND = (403, 404, 405)


# --- tenant B, as the matrix sees it ----------------------------------------------------------------------------------

class B:
    """Tenant B's objects and identifiers (built from the ``b_objects`` fixture)."""

    def __init__(self, tenant: Any, objects: dict[type, Any]) -> None:
        from coupons.models import CouponCode, CouponGrant, CouponInventory
        from events.models import Event

        self.tenant, self.objects = tenant, objects
        self.by_name = {model.__name__: obj for model, obj in objects.items()}
        codes = CouponCode.objects.filter(tenant=tenant)
        self.code = f"{SECRET}CODE"
        self.issued_code = codes.filter(member_id=f"{SECRET}-member").values_list("code", flat=True).first()
        self.inventory = CouponInventory.objects.filter(tenant=tenant).order_by("id").first()
        self.event = Event.objects.filter(tenant=tenant).order_by("id").first()
        self.grant = CouponGrant.objects.filter(tenant=tenant).first()
        self.member = f"{SECRET}-member"
        self.upload = self.model_obj("PartnerUpload")
        self.export = self.model_obj("Export")
        public_ids: list[str] = []
        for obj in objects.values():
            value = getattr(obj, "public_id", None)
            if isinstance(value, str) and value:
                public_ids.append(value)
        for model_qs in (CouponInventory.objects.filter(tenant=tenant), Event.objects.filter(tenant=tenant),
                         CouponGrant.objects.filter(tenant=tenant)):
            public_ids += [p for p in model_qs.values_list("public_id", flat=True) if p]
        self.identifiers = sorted({SECRET, *codes.values_list("code", flat=True), *public_ids})

    def model_obj(self, name: str) -> Any:
        return self.by_name.get(name)

    def pk(self, name: str) -> Any:
        obj = self.model_obj(name)
        return obj.pk if obj is not None else 999_999_999

    def public(self, name: str) -> str:
        obj = self.model_obj(name)
        return getattr(obj, "public_id", None) or "NOSUCHID000"


# --- the registry -------------------------------------------------------------------------------------------------------

@dataclass
class Case:
    """How to exercise one route as tenant A against tenant B.

    scope: "redirect" — Django admin's object URL that only redirects to the change page; "object" — the route addresses one of B's objects: 404/403/405 only (console: or the "does not exist"
    redirect to the index); "list" — the route lists or creates A's own things: any non-5xx answer without B's
    identifiers; "global" — not tenant data (login, schema, …): any non-5xx answer without B's identifiers.
    """

    scope: str = "object"
    kwargs: Callable[[B], dict[str, Any]] = lambda b: {}
    methods: tuple[str, ...] | None = None  # default: the view's own methods (API) / GET and POST (console)
    body: Callable[[B], dict[str, Any]] = lambda b: {}
    query: Callable[[B], dict[str, Any]] = lambda b: {}
    multipart: bool = False
    check: Callable[[Any, B], None] | None = None  # extra assertions on the response
    model: str | None = None  # name of B's object the route acts on: it must be unchanged afterwards


def _order() -> dict[str, Any]:
    return factories.order()


def _rejected_not_found(response: Any, b: B) -> None:
    assert [r["reason"] for r in response.json()["rejected"]] == ["not_found"]


def _batch_not_found(response: Any, b: B) -> None:
    assert [r["error"]["code"] for r in response.json()["results"]] == ["not_found"]


def _coupon_case(body: Callable[[B], dict[str, Any]]) -> Case:
    return Case(kwargs=lambda b: {"code": b.issued_code}, body=body)


API_CASES: dict[str, Case] = {
    "api-schema": Case(scope="global"),
    "api-docs": Case(scope="global"),
    "api-client-info": Case(scope="list"),
    "api-claims": Case(body=lambda b: {"member_id": "m-a", "code": b.code}),
    "api-grants": Case(body=lambda b: {"inventory": b.inventory.public_id, "member_ids": ["m-a"]}),
    "api-grant-status": Case(kwargs=lambda b: {"job": b.grant.public_id}),
    "api-checkout-validate": Case(scope="list", body=lambda b: {"member_id": b.member, "codes": [b.issued_code],
                                                                 "order": _order()}, check=_rejected_not_found),
    "api-checkout-best": Case(scope="list", body=lambda b: {"member_id": b.member, "order": _order()}),
    "api-claimable": Case(scope="list", query=lambda b: {"member_id": b.member}),
    "api-member-coupons": Case(scope="list", kwargs=lambda b: {"member_id": b.member}),
    "api-coupon-batch": Case(scope="list", kwargs=lambda b: {"action": "revoke"},
                             body=lambda b: {"items": [{"code": b.issued_code, "reason": "A"}]},
                             check=_batch_not_found),
    "api-coupon-detail": Case(kwargs=lambda b: {"code": b.issued_code}),
    "api-coupon-lock": _coupon_case(lambda b: {"member_id": b.member, "order": {**_order(), "order_id": "o-a"}}),
    "api-coupon-release": _coupon_case(lambda b: {"order_id": "o-a"}),
    "api-coupon-redeem": _coupon_case(lambda b: {"member_id": b.member, "order": {**_order(), "order_id": "o-a"}}),
    "api-coupon-refund": _coupon_case(lambda b: {"order_id": f"{SECRET}-order"}),
    "api-coupon-revoke": _coupon_case(lambda b: {"reason": "A"}),
    "api-event-participants": Case(kwargs=lambda b: {"event_id": b.event.public_id},
                                   body=lambda b: {"member_id": "m-a"}),
    "api-event-participant": Case(kwargs=lambda b: {"event_id": b.event.public_id,
                                                    "member_id": f"{SECRET}-participant"}),
    "api-event-draws": Case(kwargs=lambda b: {"event_id": b.event.public_id}),
    "api-reward-triggers": Case(scope="list", body=lambda b: {"member_id": f"{SECRET}-rewarded", "trigger": "signup",
                                                              "reference": "signup"}),
    "api-member-points": Case(scope="list", kwargs=lambda b: {"member_id": f"{SECRET}-rewarded"}),
    # Points of B's member id as seen by A: A's own member of that id, who has none (issue #16).
    "api-points-spend": Case(scope="list", kwargs=lambda b: {"member_id": f"{SECRET}-rewarded"},
                             body=lambda b: {"order_id": "o-a", "points": 1}, model="MemberPoints"),
    "api-points-refund": Case(kwargs=lambda b: {"member_id": f"{SECRET}-rewarded"},
                              body=lambda b: {"order_id": "o-a"}, model="MemberPoints"),
    "api-points-exchange": Case(kwargs=lambda b: {"member_id": "m-a"},
                                body=lambda b: {"inventory": b.model_obj("ExchangeOffer").inventory.public_id},
                                model="ExchangeOffer"),
    "api-revocations": Case(body=lambda b: {"inventory": b.inventory.public_id, "member_ids": [b.member],
                                            "reason": "A"}, model="CouponInventory"),
    "api-partner-uploads": Case(multipart=True, body=lambda b: {
        "partner": SECRET, "inventory": b.inventory.public_id,
        "file": SimpleUploadedFile("a.csv", b"AMAPPED1\n")}),
    "api-partner-upload": Case(kwargs=lambda b: {"upload_id": b.public("PartnerUpload")}),
    "api-partner-upload-failures": Case(kwargs=lambda b: {"upload_id": b.public("PartnerUpload")}),
    "api-partner-upload-reprocess": Case(kwargs=lambda b: {"upload_id": b.public("PartnerUpload")}),
    "api-exports": Case(scope="list", body=lambda b: {"kind": "codes", "inventory": b.inventory.public_id}),
    "api-export": Case(kwargs=lambda b: {"export_id": b.public("Export")}),
    "api-export-download": Case(kwargs=lambda b: {"export_id": b.public("Export")}),
    "api-distributions": Case(body=lambda b: {"inventory": b.inventory.public_id, "partner": SECRET,
                                              "quantity": 1}),
    "api-distribution": Case(kwargs=lambda b: {"distribution_id": b.public("Distribution")}),
    "api-distribution-codes": Case(kwargs=lambda b: {"distribution_id": b.public("Distribution")}),
}

CONSOLE_CASES: dict[str, Case] = {
    # Django admin's own pages
    "admin:index": Case(scope="global"),
    "admin:login": Case(scope="global", methods=("GET",)),
    "admin:logout": Case(scope="global", methods=("POST",)),
    "admin:password_change": Case(scope="global", methods=("GET",)),
    "admin:password_change_done": Case(scope="global", methods=("GET",)),
    "admin:jsi18n": Case(scope="global", methods=("GET",)),
    "admin:autocomplete": Case(scope="list", methods=("GET",), query=lambda b: {
        "app_label": "coupons", "model_name": "couponinventory", "field_name": "policy", "term": SECRET}),
    "admin:view_on_site": Case(kwargs=lambda b: {"content_type_id": _content_type_id(b.inventory),
                                                 "object_id": b.inventory.pk}, methods=("GET",)),
    "admin:auth_user_password_change": Case(kwargs=lambda b: {"id": b.users[0].pk},
                                            body=lambda b: {"password1": "x-Pw-12345!", "password2": "x-Pw-12345!"}),
    "admin:app_list": Case(scope="list", kwargs=lambda b: {"app_label": "coupons"}, methods=("GET",)),
    "admin/(?P<url>.*)$": Case(scope="global", kwargs=lambda b: {"url": f"nope/{SECRET}/"}, methods=("GET",)),
    # custom views added through get_urls
    "admin:coupons_couponpolicy_decide": Case(kwargs=lambda b: {"object_id": b.pk("CouponPolicy")},
                                              body=lambda b: {"decision": "approve"}, model="CouponPolicy"),
    "admin:coupons_couponinventory_grant": Case(kwargs=lambda b: {"object_id": b.pk("CouponInventory")},
                                                body=lambda b: {"member_ids": "m-a"}, model="CouponInventory"),
    "admin:coupons_couponbatch_generate": Case(kwargs=lambda b: {"object_id": b.pk("CouponBatch")},
                                               model="CouponBatch"),
    "admin:coupons_couponbatch_progress": Case(kwargs=lambda b: {"object_id": b.pk("CouponBatch")},
                                               model="CouponBatch"),
    "admin:partners_partnerupload_upload": Case(scope="list", body=lambda b: {
        "partner": b.pk("Partner"), "inventory": b.pk("CouponInventory")}),
    "admin:partners_partnerupload_template": Case(scope="global", methods=("GET",)),
    "admin:partners_partnerupload_reprocess": Case(kwargs=lambda b: {"object_id": b.pk("PartnerUpload")},
                                                   model="PartnerUpload"),
    "admin:rewards_memberbirthday_upload": Case(scope="list"),
    "admin:rewards_memberpoints_ledger": Case(kwargs=lambda b: {"object_id": b.pk("MemberPoints")},
                                              body=lambda b: {"amount": 5, "note": "A"}, model="MemberPoints"),
    "admin:rewards_memberpoints_adjust": Case(scope="list", body=lambda b: {"member_id": "m-a", "amount": 5,
                                                                            "note": "A"}),
    "admin:coupons_couponinventory_revoke": Case(kwargs=lambda b: {"object_id": b.pk("CouponInventory")},
                                                 body=lambda b: {"reason": "A"}, model="CouponInventory"),
    "admin:partners_distribution_distribute": Case(scope="list", body=lambda b: {
        "inventory": b.pk("CouponInventory"), "partner": b.pk("Partner"), "quantity": 1},
        query=lambda b: {"batch": b.pk("CouponBatch"), "inventory": b.pk("CouponInventory")}),
    "admin:partners_distribution_csv": Case(kwargs=lambda b: {"object_id": b.pk("Distribution")},
                                            model="Distribution"),
    "admin:exports_export_distribution": Case(kwargs=lambda b: {"object_id": b.pk("Distribution")},
                                              model="Distribution"),
    # issue #20: the decide pages of large distributions and grants waiting for an approver
    "admin:partners_distribution_decide": Case(kwargs=lambda b: {"object_id": b.pk("Distribution")},
                                               body=lambda b: {"decision": "reject", "reason": "A"},
                                               model="Distribution"),
    "admin:coupons_coupongrant_decide": Case(kwargs=lambda b: {"object_id": b.grant.pk},
                                             body=lambda b: {"decision": "approve"}, model="CouponGrant"),
    "admin:draws_draw_step": Case(kwargs=lambda b: {"object_id": b.pk("Draw"), "step": "run"}, model="Draw"),
    "admin:exports_export_download": Case(kwargs=lambda b: {"object_id": b.pk("Export")}, model="Export"),
    "admin:exports_export_progress": Case(kwargs=lambda b: {"object_id": b.pk("Export")}, model="Export"),
    # console pages of other apps
    "console-language": Case(scope="global", body=lambda b: {"language": "en"}),
    "console-preferences": Case(scope="global"),
    "dashboard:index": Case(scope="list", methods=("GET",)),
    # issue #20: an event's campaign report (page and XLSX) and the approvals inbox
    "dashboard:event_report": Case(kwargs=lambda b: {"event_id": b.event.pk}, methods=("GET",)),
    "dashboard:event_report_xlsx": Case(kwargs=lambda b: {"event_id": b.event.pk}, methods=("GET",)),
    "admin:coupons_couponpolicy_approvals": Case(scope="list", methods=("GET",)),
    "ops:jobs": Case(scope="global", methods=("GET",)),
    "ops:failed_jobs": Case(scope="global", methods=("GET",)),
    "ops:failed_job": Case(kwargs=lambda b: {"queue": "default", "job_id": f"{SECRET}-job"}, methods=("GET",)),
    "ops:failed_job_action": Case(kwargs=lambda b: {"queue": "default", "job_id": f"{SECRET}-job",
                                                    "action": "requeue"}, methods=("POST",)),
}

# Other helpers: add your route here, keyed by its URL name (see Case).
CASES: dict[str, Case] = {**API_CASES, **CONSOLE_CASES}

# Outside the matrix on purpose: not API or console routes.
OUT_OF_SCOPE_PREFIXES = ("health/", "metrics")


def _content_type_id(obj: Any) -> int:
    from django.contrib.contenttypes.models import ContentType

    return ContentType.objects.get_for_model(obj).pk


# --- routes from the URL configuration ----------------------------------------------------------------------------------

@dataclass
class Route:
    pattern: str
    name: str | None
    callback: Any
    kwargs: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return self.name or self.pattern


def iter_routes(resolver: URLResolver | None = None, prefix: str = "", namespace: str | None = None
                ) -> Iterator[Route]:
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            ns = namespace
            if entry.namespace:
                ns = f"{namespace}:{entry.namespace}" if namespace else entry.namespace
            yield from iter_routes(entry, prefix + str(entry.pattern), ns)
        elif isinstance(entry, URLPattern):
            pattern = prefix + str(entry.pattern)
            name = f"{namespace}:{entry.name}" if namespace and entry.name else entry.name
            regex = entry.pattern.regex.pattern if hasattr(entry.pattern, "regex") else ""
            names = re.findall(r"\(\?P<(\w+)>", regex) + re.findall(r"<(?:\w+:)?(\w+)>", str(entry.pattern))
            yield Route(pattern, name, entry.callback, list(dict.fromkeys(names)))


def matrix_routes() -> list[Route]:
    return [r for r in iter_routes() if r.pattern.startswith(("api/", "admin/"))]


_STANDARD = re.compile(r"^admin:(?P<app>\w+?)_(?P<model>[a-z0-9]+)_(?P<view>changelist|add|change|delete|history|"
                       r"export|import|process_import)$")
_OBJECT_REDIRECT = re.compile(r"^admin/(?P<app>\w+)/(?P<model>[a-z0-9]+)/<path:object_id>/$")


def _model_admin(app: str, model: str) -> Any:
    for model_cls, model_admin in admin.site._registry.items():
        if model_cls._meta.app_label == app and model_cls._meta.model_name == model:
            return model_admin
    return None


def standard_case(route: Route) -> Case | None:
    """Cases for the routes every ModelAdmin has: derived from the admin registry."""
    match = _STANDARD.match(route.name or "") or _OBJECT_REDIRECT.match(route.pattern if not route.name else "")
    if match is None:
        return None
    model_admin = _model_admin(match["app"], match["model"])
    if model_admin is None:
        return None
    name = model_admin.model.__name__
    view = match.groupdict().get("view") or "redirect"
    if view == "redirect":  # admin/<app>/<model>/<id>/ only redirects to …/<id>/change/, covered by its own case
        return Case(scope="redirect", kwargs=lambda b, n=name: {"object_id": _b_object_pk(b, n)}, model=name)
    if view in ("change", "delete", "history") or "object_id" in route.kwargs:
        return Case(kwargs=lambda b, n=name: {"object_id": _b_object_pk(b, n)}, model=name)
    action = _first_action(model_admin) if view == "changelist" else ""
    return Case(scope="list", model=name, body=lambda b, n=name, a=action: (
        {"action": a, "_selected_action": [_b_object_pk(b, n)], "index": 0} if a else {}))


def _first_action(model_admin: Any) -> str:
    try:
        return next(iter(model_admin.get_actions(_FakeRequest())), "")
    except Exception:  # an admin whose permission hooks need a real request: post no action then
        return ""


class _FakeRequest:
    """Enough of a request for ``get_actions`` to list a ModelAdmin's actions (a superuser sees them all)."""

    class user:  # noqa: N801
        is_superuser = True
        is_active = is_staff = True

        @staticmethod
        def has_perm(*_a: Any) -> bool:
            return True

    GET: dict[str, str] = {}
    POST: dict[str, str] = {}


def _b_object_pk(b: B, name: str) -> Any:
    if name == "Tenant":
        return b.tenant.pk
    if name == "User":
        return b.users[0].pk
    obj = b.model_obj(name)
    if obj is None:
        from django.contrib.auth.models import Group

        if name == "Group":
            return Group.objects.order_by("pk").values_list("pk", flat=True).first() or 1
        return 999_999_999
    return obj.pk


def case_for(route: Route) -> Case | None:
    return CASES.get(route.key) or standard_case(route)


def test_every_route_has_a_case():
    """A new API or console route must get a case in CASES (or be a standard ModelAdmin route)."""
    missing = [f"{r.key}  ({r.pattern})" for r in matrix_routes() if case_for(r) is None]
    assert not missing, ("routes without a case in tests/security/test_route_matrix.py CASES — add one keyed by the "
                         "URL name:\n  " + "\n  ".join(missing))


# --- the matrix ---------------------------------------------------------------------------------------------------------

def _api_methods(route: Route) -> tuple[str, ...]:
    view_class = getattr(route.callback, "view_class", None) or getattr(route.callback, "cls", None)
    if view_class is None:
        return ("GET",)
    return tuple(m.upper() for m in ("get", "post", "put", "patch", "delete") if hasattr(view_class, m))


def _leaks(body: str, b: B, sent: str) -> list[str]:
    return [ident for ident in b.identifiers if ident in body and ident not in sent]


def _console_not_found(response: Any) -> bool:
    """Django admin answers a missing object with a redirect to the index (and a "does not exist" message)."""
    if response.status_code in NOT_FOUND:
        return True
    return response.status_code == 302 and response["Location"] in (reverse("admin:index"), "/admin/")


def _snapshot(b: B, case: Case) -> dict[str, Any] | None:
    obj = b.model_obj(case.model) if case.model else None
    if obj is None:
        return None
    obj.refresh_from_db()
    return model_to_dict(obj)


@pytest.mark.xdist_group("route_matrix")
def test_tenant_a_cannot_reach_tenant_b_through_any_route(client, a_user, tenant, other_tenant,  # noqa: F811
                                                          b_objects, settings):  # noqa: F811
    """R-TEN-1: every route × method, as tenant A against tenant B's objects."""
    settings.COUPON_FAILED_GUESS_LIMIT = 0  # the matrix guesses many codes on purpose
    settings.COUPON_RATE_CODE_LOOKUP_CLIENT = settings.COUPON_RATE_CODE_LOOKUP_IP = ""
    b = B(other_tenant, b_objects)
    b.users = [factories.make_operator(other_tenant, username=f"{SECRET.lower()}-user")]
    _client, token = factories.make_client(tenant, scope=ApiClient.Scope.OPERATOR, name="matrix A")
    api = APIClient(raise_request_exception=False)
    client.raise_request_exception = False  # a 500 is a finding of the matrix, not a crash of the test
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    failures: list[str] = []
    exercised = 0
    for route in matrix_routes():
        case = case_for(route)
        if case is None:
            failures.append(f"{route.key}: no case (add one to CASES)")
            continue
        kwargs = {k: str(v) for k, v in case.kwargs(b).items()}
        missing = [k for k in route.kwargs if k not in kwargs]
        if missing:
            failures.append(f"{route.key}: the case gives no value for {missing}")
            continue
        path = "/" + _fill(route.pattern, kwargs)
        is_api = route.pattern.startswith("api/")
        methods = case.methods or (_api_methods(route) if is_api else ("GET", "POST"))
        for method in methods:
            before = _snapshot(b, case)
            body, query = case.body(b), case.query(b)
            sent = path + repr(body) + repr(query)
            if is_api:
                if method == "GET":
                    response = api.get(path, query)
                else:
                    response = getattr(api, method.lower())(path, body, format="multipart" if case.multipart else
                                                            "json")
            else:
                client.force_login(a_user)
                response = client.get(path, query) if method == "GET" else getattr(client, method.lower())(
                    path, body)
            exercised += 1
            label = f"{method} {path} [{route.key}]"
            status = response.status_code
            content = b"".join(response.streaming_content) if getattr(response, "streaming", False) \
                else response.content
            text = content.decode(errors="replace")
            if status >= 500:
                failures.append(f"{label}: answered {status}")
                continue
            if case.scope == "redirect":
                if not (status in NOT_FOUND or (status in (301, 302) and response["Location"] == path + "change/")):
                    failures.append(f"{label}: answered {status}, expected a redirect to {path}change/")
            if case.scope == "object":
                ok = status in NOT_FOUND if is_api else _console_not_found(response)
                if not ok:
                    failures.append(f"{label}: answered {status}, expected 404/403/405")
            leaked = _leaks(text, b, sent)
            if leaked:
                failures.append(f"{label}: the answer contains tenant B's {leaked[:3]}")
            if case.check is not None and status < 400:
                try:
                    case.check(response, b)
                except AssertionError as exc:
                    failures.append(f"{label}: {exc or 'check failed'}")
            after = _snapshot(b, case)
            if before != after:
                failures.append(f"{label}: changed tenant B's {case.model}")
    assert exercised > 100
    assert not failures, "tenant A reached tenant B:\n  " + "\n  ".join(failures)


def _fill(pattern: str, kwargs: dict[str, str]) -> str:
    path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: kwargs[m.group(1)], pattern)
    path = re.sub(r"\^?\(\?P<(\w+)>[^)]*\)", lambda m: kwargs[m.group(1)], path)
    return path.replace("^", "").replace("$", "")
