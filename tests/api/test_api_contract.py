"""#19 (must show): docs/API.md — the contract in the repository — is kept true by comparing its machine-readable
tables with what the code serves and raises:

- the endpoint table with the OpenAPI schema: every (method, path) in both, with the same group (tag), operation id,
  path and query parameters, body fields (and which are required) and success statuses;
- the objects table with the schema's response components: the same objects with the same fields;
- the error-code table with every code the code base defines: ``code`` of every ``DomainError`` subclass, every
  literal ``code="…"`` given to one where it is raised, the DRF exceptions' codes of ``core.api.errors`` and the API
  exceptions' ``api_code`` — with their HTTP status;
- the refusal-reason table with ``coupons.exceptions.REFUSAL_MESSAGES``, the discount engine's reasons and the
  schema's enum of ``RejectedOut.reason``.

A route, field or code in one and not the other fails, naming it.
"""
from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest
from django.conf import settings

BASE_DIR = Path(settings.BASE_DIR)
DOC = BASE_DIR / "docs" / "API.md"
NAME = re.compile(r"`([^`]+)`")


def doc_tables() -> dict[str, list[dict[str, str]]]:
    """Every markdown table of the contract, keyed by its header row (``"group|method|path|…"``)."""
    tables: dict[str, list[dict[str, str]]] = {}
    lines = DOC.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("|") and index + 1 < len(lines) and re.match(r"^\|[-| ]+\|$", lines[index + 1]):
            header = [cell.strip() for cell in line.strip()[1:-1].split("|")]
            rows = []
            index += 2
            while index < len(lines) and lines[index].startswith("|"):
                cells = [cell.strip() for cell in lines[index].strip()[1:-1].split("|")]
                assert len(cells) == len(header), f"docs/API.md: a row with {len(cells)} cells under {header}: {lines[index]}"
                rows.append(dict(zip(header, cells, strict=True)))
                index += 1
            tables["|".join(header)] = rows
        else:
            index += 1
    return tables


def table(prefix: str) -> list[dict[str, str]]:
    matches = [rows for header, rows in doc_tables().items() if header.startswith(prefix)]
    assert len(matches) == 1, f"docs/API.md has {len(matches)} tables whose header starts {prefix!r}"
    return matches[0]


@pytest.fixture(scope="module")
def schema() -> dict:
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator().get_schema(request=None, public=True)


def _resolve(schema: dict, node: dict) -> dict:
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].split("/")[-1]]
    return node


def schema_endpoints(schema: dict) -> dict[tuple[str, str], dict]:
    endpoints = {}
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            params = {p["name"] for p in operation.get("parameters", []) if p["in"] in ("path", "query")}
            body: dict[str, bool] = {}
            if "requestBody" in operation:
                (content,) = operation["requestBody"]["content"].values()
                component = _resolve(schema, content["schema"])
                required = set(component.get("required", ()))
                body = {name: name in required for name in component["properties"]}
            endpoints[(method.upper(), path)] = {
                "group": operation["tags"][0], "operation": operation["operationId"], "parameters": params,
                "body": body, "success": {code for code in operation["responses"] if code.startswith("2")}}
    return endpoints


def doc_endpoints() -> dict[tuple[str, str], dict]:
    endpoints = {}
    for row in table("group|method|path|operation|parameters|body|success"):
        key = (row["method"], "/api/v1" + row["path"])
        assert key not in endpoints, f"docs/API.md lists {key} twice"
        body = {}
        for item in (part.strip() for part in row["body"].split(",") if part.strip()):
            name = NAME.search(item)
            assert name, f"docs/API.md {key}: body item {item!r} is not `name` or `name`?"
            body[name.group(1)] = not item.endswith("?")
        endpoints[key] = {"group": row["group"], "operation": row["operation"],
                          "parameters": set(NAME.findall(row["parameters"])), "body": body,
                          "success": set(re.findall(r"\b2\d\d\b", row["success"]))}
    return endpoints


def test_the_endpoint_table_lists_every_route_of_the_schema_and_no_other(schema):
    served, documented = set(schema_endpoints(schema)), set(doc_endpoints())
    assert not served - documented, f"routes missing from docs/API.md: {sorted(served - documented)}"
    assert not documented - served, f"routes in docs/API.md the API does not serve: {sorted(documented - served)}"


def test_each_documented_route_has_the_schemas_group_operation_parameters_body_and_success(schema):
    served, documented = schema_endpoints(schema), doc_endpoints()
    problems = []
    for key in sorted(set(served) & set(documented)):
        for aspect in ("group", "operation", "parameters", "body", "success"):
            if served[key][aspect] != documented[key][aspect]:
                problems.append(f"{key} {aspect}: schema {served[key][aspect]!r}, docs {documented[key][aspect]!r}")
    assert not problems, "docs/API.md and the schema differ:\n" + "\n".join(problems)


def test_the_groups_are_the_schemas_tags_in_the_contracts_order(schema):
    tags = [tag["name"] for tag in schema["tags"]]
    documented = list(dict.fromkeys(row["group"] for row in table("group|method|path")))
    assert documented == tags


def response_objects(schema: dict) -> dict[str, list[str]]:
    """Every component with properties that a response refers to, directly or nested."""
    components = schema["components"]["schemas"]
    seen: dict[str, list[str]] = {}

    def visit(node):
        if isinstance(node, dict):
            ref = node.get("$ref")
            if ref:
                name = ref.split("/")[-1]
                if name not in seen:
                    seen[name] = list(components[name].get("properties", {}))
                    visit(components[name])
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    for operations in schema["paths"].values():
        for operation in operations.values():
            visit(operation["responses"])
    return {name: fields for name, fields in seen.items() if fields}


def test_the_objects_table_has_every_response_object_with_its_fields(schema):
    served = {name: set(fields) for name, fields in response_objects(schema).items()}
    documented = {NAME.search(row["object"]).group(1): set(NAME.findall(row["fields"]))
                  for row in table("object|fields")}
    assert set(served) == set(documented), (
        f"objects missing from docs/API.md: {sorted(set(served) - set(documented))}; "
        f"documented but not answered: {sorted(set(documented) - set(served))}")
    differing = {name: (sorted(served[name] - documented[name]), sorted(documented[name] - served[name]))
                 for name in served if served[name] != documented[name]}
    assert not differing, f"fields (missing from the docs, not in the schema) per object: {differing}"


# --- error codes ------------------------------------------------------------------------------------------------------

def _modules() -> list[Path]:
    skip = {"migrations", "tests", "bench", "management"}
    return [path for app in settings.LOCAL_APPS for path in sorted((BASE_DIR / app).rglob("*.py"))
            if not skip & set(path.relative_to(BASE_DIR).parts) and "bench" not in path.stem
            and path.stem != "gunicorn_conf"]


def code_catalogue() -> dict[str, set[int]]:
    """code → the HTTP statuses it is raised with, from the classes and the raise sites of the code base."""
    from rest_framework.exceptions import APIException

    from core.api.errors import _CODES
    from core.exceptions import DomainError

    for path in _modules():
        importlib.import_module(".".join(path.relative_to(BASE_DIR).with_suffix("").parts).removesuffix(".__init__"))

    classes: dict[str, type[DomainError]] = {}

    def walk(cls: type[DomainError]) -> None:
        classes[cls.__name__] = cls
        for sub in cls.__subclasses__():
            walk(sub)

    walk(DomainError)
    codes: dict[str, set[int]] = {}
    for cls in classes.values():
        codes.setdefault(cls.code, set()).add(cls.status)
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            keywords = {k.arg: k.value for k in node.keywords}
            code = keywords.get("code")
            if name in classes and isinstance(code, ast.Constant) and isinstance(code.value, str):
                status = keywords.get("status")
                codes.setdefault(code.value, set()).add(
                    status.value if isinstance(status, ast.Constant) else classes[name].status)
    for exc, code in _CODES.items():
        codes.setdefault(code, set()).add(exc.status_code)

    def api_codes(cls: type[APIException]) -> None:
        if isinstance(getattr(cls, "api_code", None), str):
            codes.setdefault(cls.api_code, set()).add(cls.status_code)
        for sub in cls.__subclasses__():
            api_codes(sub)

    api_codes(APIException)
    codes.setdefault("server_error", set()).add(500)  # core.api.errors: the answer to an unexpected exception
    return codes


def test_the_error_code_table_is_the_code_bases_catalogue_with_its_statuses():
    defined = code_catalogue()
    rows = {NAME.search(row["code"]).group(1): row for row in table("code|status|where|meaning")}
    assert not set(defined) - set(rows), f"codes missing from docs/API.md: {sorted(set(defined) - set(rows))}"
    assert not set(rows) - set(defined), f"codes in docs/API.md no code raises: {sorted(set(rows) - set(defined))}"
    wrong = {code: (sorted(statuses), rows[code]["status"]) for code, statuses in defined.items()
             if not statuses <= {int(s) for s in re.findall(r"\d{3}", rows[code]["status"])}}
    assert not wrong, f"statuses the code raises that docs/API.md does not give: {wrong}"
    assert all(row["where"] in {"api", "console", "both", "engine"} and row["meaning"] for row in rows.values())


def test_every_code_core_api_errors_answers_is_in_the_catalogue():
    """The codes the API's exception handler writes itself (not a DomainError), read from its source."""
    source = (BASE_DIR / "core" / "api" / "errors.py").read_text(encoding="utf-8")
    literals = set(re.findall(r'"([a-z]+(?:_[a-z]+)*)"', source)) & set(code_catalogue())
    documented = {NAME.search(row["code"]).group(1) for row in table("code|status|where|meaning")}
    assert literals and literals <= documented


# --- refusal reasons -------------------------------------------------------------------------------------------------

def test_the_refusal_reasons_are_the_codes_messages_the_engines_reasons_and_the_schemas_enum(schema):
    from coupons.discounts import Reason
    from coupons.exceptions import REFUSAL_MESSAGES

    documented = {NAME.search(row["reason"]).group(1) for row in table("reason|meaning")}
    assert documented == set(REFUSAL_MESSAGES)
    assert {reason.value for reason in Reason} <= documented
    rejected = schema["components"]["schemas"]["RejectedOut"]["properties"]["reason"]
    assert set(_resolve(schema, rejected.get("allOf", [rejected])[0])["enum"]) == documented


def test_the_pricing_refusals_have_a_reason_in_the_table():
    """coupons.pricing answers reasons of its own before the engine's: each is a string literal there."""
    from coupons.exceptions import REFUSAL_MESSAGES

    source = (BASE_DIR / "coupons" / "pricing.py").read_text(encoding="utf-8")
    used = set(re.findall(r'"([a-z]+(?:_[a-z]+)+|not_found|expired|revoked)"', source))
    used -= {"inventory__policy", "valid_until", "valid_from", "member_id", "order_id", "locked_order_id"}
    assert used and used <= set(REFUSAL_MESSAGES), sorted(used - set(REFUSAL_MESSAGES))


# --- where the contract is ------------------------------------------------------------------------------------------

def test_the_schema_and_the_readme_point_at_the_contract_in_the_repository(schema):
    assert "docs/API.md" in schema["info"]["description"]
    readme = (BASE_DIR / "README.md").read_text(encoding="utf-8")
    assert "docs/API.md" in readme and "shared docs" not in readme


def test_no_operation_shows_a_maintainers_docstring(schema):
    """Descriptions are written for integrators: none is a view's or a base class's docstring."""
    from django.urls import get_resolver

    docstrings = set()
    for pattern in get_resolver().url_patterns:
        for sub in getattr(pattern, "url_patterns", [pattern]):
            view = getattr(getattr(sub, "callback", None), "cls", None)
            for cls in getattr(view, "__mro__", ()):
                if cls.__doc__:
                    docstrings.add(" ".join(cls.__doc__.split())[:60])
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            text = " ".join((operation.get("description") or "").split())
            assert operation.get("summary"), f"{method.upper()} {path} has no summary"
            assert text, f"{method.upper()} {path} has no description"
            assert not any(text.startswith(doc) for doc in docstrings), f"{method.upper()} {path}: {text[:80]}"
