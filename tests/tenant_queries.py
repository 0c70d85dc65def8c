"""Every query names its tenant (issue #23): a test mode that fails any SQL statement reading or writing a tenant table
without a predicate on that table's ``tenant_id``, so a planner distributing tables by tenant (Citus) can route each
statement of a request to one node.

The tenant tables are derived from the models: every concrete model with a field named ``tenant``. The checker is a
small scanner, not a SQL parser; its rules, all per statement:

* string literals and comments are blanked first, identifiers unquoted and lower-cased;
* a *reference* is a table named after FROM, JOIN, UPDATE, INTO or USING (``FROM a, b`` too), with its alias if any;
  the parenthesised sub-statement it sits in (a group opening with SELECT/WITH/UPDATE/INSERT/DELETE) is its *scope*;
* ``q.tenant_id = <value>``, ``q.tenant_id IN (…)`` or ``q.tenant_id = ANY(…)`` names the tenant of every reference
  whose alias (or table name, when it has none) is ``q``; an unqualified ``tenant_id = …`` names the tenant of the
  one tenant reference of its scope (with two, PostgreSQL itself would call it ambiguous);
* ``a.tenant_id = b.tenant_id`` (a join condition) names the tenant of one side when the other's is named, transitively;
* ``SET … tenant_id = …`` of an UPDATE or ``ON CONFLICT … DO UPDATE`` is an assignment, not a predicate;
* an INSERT names its tenant when its column list holds ``tenant_id``.

A statement with a tenant reference whose tenant is not named is a violation, unless an ``ALLOWED`` entry matches it;
each entry says why it is routable anyway. Violations raise ``AssertionError`` from the execute wrapper and are also
collected, so one swallowed by a broad ``except`` in the code still fails the test when the mode ends.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field

from django.apps import apps
from django.db import connections

_STRING = re.compile(r"'(?:[^']|'')*'")
_COMMENT = re.compile(r"--[^\n]*|/\*.*?\*/", re.S)
_IDENT = r"[a-z_][a-z0-9_$]*"
_KEYWORDS = frozenset("""
    where set inner left right full cross join on order group limit offset for returning using values union having
    window except intersect natural lateral tablesample default select and or with as only outer fetch into from
    update delete insert do nothing conflict
""".split())
_REFERENCE = re.compile(rf"\b(from|join|update|into|using)\s+(?:only\s+)?((?:{_IDENT}\.)?{_IDENT})"
                        rf"(?:\s+(?:as\s+)?({_IDENT}))?")
_MORE_REFERENCES = re.compile(rf"\s*,\s*((?:{_IDENT}\.)?{_IDENT})(?:\s+(?:as\s+)?({_IDENT}))?")
_TENANT_PREDICATE = re.compile(rf"(?<![\w.])(?:({_IDENT})\.)?tenant_id\s*(=\s*any\s*\(|=|in\s*\()\s*"
                               rf"\(*\s*(?:({_IDENT})\.({_IDENT})\b|(select)\b)?")
_SCOPE_START = re.compile(r"\s*(select|with|update|insert|delete)\b")
_ASSIGNMENT = re.compile(r"\bset\b")
_ASSIGNMENT_END = re.compile(r"\b(where|from|returning)\b")


@dataclass(frozen=True)
class Allowed:
    """A statement on a tenant table that need not name the tenant, and why a distributed planner routes it anyway."""

    table: str
    pattern: re.Pattern[str]
    why: str


ALLOWED: tuple[Allowed, ...] = (
    # Token authentication (core/api/authentication.py) finds the client by its token's public prefix (the current or
    # the previous one during a rotation), then compares the token's hash: the tenant is what this lookup answers, so
    # it cannot be in the predicate. Distributed, core_apiclient is a reference table (few rows, read-mostly) or a
    # table distributed by key_prefix: either way this one statement goes to one node. Exactly this statement.
    Allowed("core_apiclient", re.compile(
        r"^select [a-z0-9_., ]+ from core_apiclient inner join core_tenant on \(core_apiclient\.tenant_id = "
        r"core_tenant\.id\) where \(core_apiclient\.key_prefix = %s or core_apiclient\.previous_key_prefix = %s\)"
        r"( order by [a-z0-9_., ]+)?$"), "token authentication by the token's prefix, before the tenant is known"),
)


@dataclass
class Reference:
    table: str
    name: str  # the alias, or the table's name without a schema
    scope: int
    named: bool = False


@dataclass
class Violation:
    table: str
    sql: str

    def __str__(self) -> str:
        return f"a query on tenant table {self.table} names no tenant_id: {self.sql}"


def tenant_tables() -> frozenset[str]:
    """The tables of every concrete model with a field named ``tenant``."""
    return frozenset(model._meta.db_table for model in apps.get_models()
                     if not model._meta.proxy and any(f.name == "tenant" for f in model._meta.concrete_fields))


def normalise(sql: str) -> str:
    """Literals and comments blanked, identifiers unquoted, lower case, whitespace single."""
    sql = _COMMENT.sub(" ", _STRING.sub("'_'", sql))
    return " ".join(sql.replace('"', "").lower().split())


def _scopes(sql: str) -> list[int]:
    """For each character, the start (+1) of the sub-statement it is in; 0 for the statement itself."""
    owner = [0] * len(sql)
    stack: list[int] = [0]
    for i, ch in enumerate(sql):
        if ch == "(":
            stack.append(i + 1 if _SCOPE_START.match(sql, i + 1) else stack[-1])
        owner[i] = stack[-1]
        if ch == ")" and len(stack) > 1:
            stack.pop()
    return owner


def _mask_assignments(sql: str) -> str:
    """Blank each SET list (UPDATE, ON CONFLICT DO UPDATE) up to its WHERE/FROM/RETURNING at the same depth."""
    chars = list(sql)
    for match in _ASSIGNMENT.finditer(sql):
        depth, i = 0, match.end()
        while i < len(sql):
            ch = sql[i]
            if ch == "(":
                depth += 1
            elif ch == ")":
                if depth == 0:
                    break
                depth -= 1
            elif depth == 0 and _ASSIGNMENT_END.match(sql, i) and (i == 0 or not sql[i - 1].isalnum()):
                break
            i += 1
        chars[match.end():i] = "_" * (i - match.end())
    return "".join(chars)


def _references(sql: str, tables: frozenset[str], scopes: list[int]) -> list[Reference]:
    found: list[Reference] = []

    def add(table: str, alias: str | None, at: int) -> Reference | None:
        table = table.split(".")[-1]
        if alias in _KEYWORDS:
            alias = None
        if table not in tables:
            return None
        found.append(Reference(table, alias or table, scopes[at]))
        return found[-1]

    for match in _REFERENCE.finditer(sql):
        keyword, table, alias = match.groups()
        reference = add(table, alias, match.start())
        if keyword == "into":
            columns = re.match(r"\s*\(([^)]*)\)", sql[match.end():])
            if reference and columns:
                reference.named = "tenant_id" in {c.strip() for c in columns.group(1).split(",")}
            continue
        end = match.end()
        while keyword in ("from", "using") and (more := _MORE_REFERENCES.match(sql, end)):
            add(more.group(1), more.group(2), more.start(1))
            end = more.end()
    return found


def violations(sql: str, tables: frozenset[str] | None = None) -> list[Violation]:
    """The tenant tables ``sql`` touches without naming their tenant (empty: the statement is routable)."""
    tables = tenant_tables() if tables is None else tables
    text = normalise(sql)
    scopes = _scopes(text)
    references = _references(text, tables, scopes)
    if not references:
        return []
    predicates = _mask_assignments(text)
    edges: list[tuple[str, str]] = []
    for match in _TENANT_PREDICATE.finditer(predicates):
        left, operator, right_qualifier, right_column, subquery = match.groups()
        # Unqualified, the column is the one tenant table's of this scope (not of a same-named one in another scope).
        own = [r for r in references if r.scope == scopes[match.start()]] if left is None else \
            [r for r in references if r.name == left]
        if left is None and len(own) != 1:
            continue
        if right_column or subquery:  # another column (a join) or a sub-select: no value of its own
            if right_column == "tenant_id" and operator == "=":
                edges.append((own[0].name if left is None else left, right_qualifier))
            continue
        for reference in own:
            reference.named = True
    changed = True
    while changed:
        changed = False
        named = {r.name for r in references if r.named}
        for a, b in edges:
            for reference in references:
                if not reference.named and ((reference.name == a and b in named) or
                                            (reference.name == b and a in named)):
                    reference.named = changed = True
    return [Violation(r.table, sql) for r in references if not r.named
            and not any(a.table == r.table and a.pattern.match(text) for a in ALLOWED)]


@dataclass
class TenantQueryMode:
    """What the mode saw: every statement, and the ones that name no tenant."""

    tables: frozenset[str]
    statements: list[str] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)

    def __call__(self, execute, sql, params, many, context):
        self.statements.append(sql)
        found = violations(sql, self.tables)
        if found:
            self.violations.extend(found)
            raise AssertionError(str(found[0]))
        return execute(sql, params, many, context)


@contextmanager
def every_query_names_its_tenant() -> Iterator[TenantQueryMode]:
    """Within the block, a statement on a tenant table without a tenant_id predicate fails (every connection)."""
    mode = TenantQueryMode(tenant_tables())
    with ExitStack() as stack:
        for connection in connections.all():
            stack.enter_context(connection.execute_wrapper(mode))
        yield mode
    assert not mode.violations, "\n".join(str(v) for v in mode.violations)
