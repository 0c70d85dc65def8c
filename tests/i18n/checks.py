"""Finders of user-visible text that is not marked for translation (issue #11, "Must show").

Each finder takes an app label and returns a list of human-readable problems ("where: what"); the tests in
test_marked_strings.py run them for every app in ``SWEPT_APPS`` and assert the lists are empty.
"""
from __future__ import annotations

import ast
import importlib
import pkgutil
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from django.apps import apps
from django.conf import settings
from django.contrib import admin
from django.template.base import Lexer, TokenType
from django.utils.functional import Promise

BASE_DIR = Path(settings.BASE_DIR)
# bench (manage.py bench) is developer tooling: no console pages, no catalogue (#22).
OUR_APPS = [app.split(".")[0] for app in settings.LOCAL_APPS if app != "bench"]

KINDS = frozenset({"models", "console", "commands", "sources", "templates"})

# Apps (and their templates) whose user-visible text is marked and translated, with the kinds of check that are on.
# Sweeping an app = adding it here with KINDS. The final state is every app of OUR_APPS with every kind;
# test_sweep_progress (a skip) lists what is left.
SWEPT: dict[str, frozenset[str]] = {
    "core": KINDS,
    "coupons": KINDS,
    "events": KINDS,
    "draws": KINDS,
    "rewards": KINDS,
    "risk": KINDS,
    "exports": KINDS,
    "ops": KINDS,
    "dashboard": KINDS,
    "partners": KINDS,
}
SWEPT_APPS = list(SWEPT)

# Text allowed outside {% translate %} in templates: symbols, units and codes that read the same in every language.
TEMPLATE_TEXT_ALLOWED = {"KRW", "CSV", "XLSX", "API", "ID"}

LETTERS = re.compile(r"[^\W\d_]")


def has_letters(text: str) -> bool:
    return bool(LETTERS.search(text))


def is_marked(value: Any) -> bool:
    """Marked = a lazy translation (evaluated in the language active when shown)."""
    return isinstance(value, Promise)


# --- models -------------------------------------------------------------------------------------------------


def _choice_labels(choices: Any) -> Iterator[Any]:
    for value, label in choices or ():
        if isinstance(label, (list, tuple)):
            yield value  # optgroup name
            yield from (inner for _v, inner in label)
        else:
            yield label


def model_problems(app_label: str) -> list[str]:
    problems = []
    for model in apps.get_app_config(app_label).get_models():
        name = model._meta.label
        for option in ("verbose_name", "verbose_name_plural"):
            if not is_marked(model._meta.original_attrs.get(option)):
                problems.append(f"{name}: Meta.{option} is not a lazy translation")
        for field in model._meta.local_fields + list(model._meta.local_many_to_many):
            if field.auto_created:
                continue
            where = f"{name}.{field.name}"
            if not is_marked(field.verbose_name):
                problems.append(f"{where}: verbose_name {field.verbose_name!r} is not a lazy translation")
            if field.help_text and not is_marked(field.help_text):
                problems.append(f"{where}: help_text is not a lazy translation")
            for label in _choice_labels(field.choices):
                if not is_marked(label):
                    problems.append(f"{where}: choice label {label!r} is not a lazy translation")
            for validator in field.validators:
                message = getattr(validator, "message", None)
                if isinstance(message, str) and has_letters(message):
                    problems.append(f"{where}: validator message {message!r} is not a lazy translation")
    return problems


# --- console (ModelAdmins) --------------------------------------------------------------------------------------


def _described(owner: Any, item: Any) -> Any:
    """The callable a list_display / readonly_fields / actions entry names, or None for a model field."""
    if callable(item):
        return item
    if isinstance(item, str):
        for source in (owner, owner.model):
            attr = getattr(source, item, None)
            if attr is not None and not isinstance(attr, (str, int)) and item not in _field_names(owner.model):
                return attr.fget if isinstance(attr, property) else attr
    return None


def _field_names(model: Any) -> set[str]:
    return {f.name for f in model._meta.get_fields()}


def admin_problems(app_label: str) -> list[str]:
    problems = []
    if app_label == "core":
        for option in ("site_header", "site_title", "index_title"):
            if not is_marked(getattr(admin.site, option)):
                problems.append(f"admin.site.{option} is not a lazy translation")
    for model, model_admin in admin.site._registry.items():
        if model._meta.app_label != app_label:
            continue
        owners = [model_admin, *(inline(model, admin.site) for inline in model_admin.inlines)]
        for owner in owners:
            where = type(owner).__name__
            for title, _options in owner.fieldsets or ():
                if title is not None and not is_marked(title):
                    problems.append(f"{where}: fieldset title {title!r} is not a lazy translation")
            help_text = getattr(owner, "search_help_text", None)
            if help_text and not is_marked(help_text):
                problems.append(f"{where}: search_help_text is not a lazy translation")
            for option in ("verbose_name", "verbose_name_plural"):
                value = owner.__class__.__dict__.get(option)
                if value is not None and not is_marked(value):
                    problems.append(f"{where}: {option} {value!r} is not a lazy translation")
            for item in [*(getattr(owner, "list_display", ()) or ()), *(owner.readonly_fields or ())]:
                func = _described(owner, item)
                if func is not None and not is_marked(getattr(func, "short_description", None)):
                    problems.append(f"{where}: column {item!r} has no translated description (admin.display)")
            for item in getattr(owner, "list_filter", ()) or ():
                title = getattr(item, "title", None) if isinstance(item, type) else None
                if title is not None and not is_marked(title):
                    problems.append(f"{where}: list filter title {title!r} is not a lazy translation")
        for action in model_admin.actions or ():
            func = getattr(model_admin, action) if isinstance(action, str) else action
            if not is_marked(getattr(func, "short_description", None)):
                problems.append(f"{type(model_admin).__name__}: action {action!r} has no translated description")
    return problems


def command_problems(app_label: str) -> list[str]:
    problems = []
    package = f"{apps.get_app_config(app_label).name}.management.commands"
    try:
        module = importlib.import_module(package)
    except ModuleNotFoundError:
        return []
    for info in pkgutil.iter_modules(module.__path__):
        if info.name.startswith("bench"):
            continue  # developer tooling, like the benchmarks themselves
        command = importlib.import_module(f"{package}.{info.name}").Command
        if command.help and not is_marked(command.help):
            problems.append(f"manage.py {info.name}: help is not a lazy translation")
    return problems


# --- Python sources: messages, errors, labels ----------------------------------------------------------------


def _plain_text(node: ast.AST | None) -> bool:
    """A literal (or an f-string, concatenation or .format of one) that people read: not wrapped in gettext."""
    if node is None:
        return False
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str) and has_letters(node.value)
    if isinstance(node, ast.JoinedStr):
        return any(_plain_text(v) for v in node.values if isinstance(v, ast.Constant))
    if isinstance(node, ast.BinOp):
        return _plain_text(node.left) or _plain_text(node.right)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format":
        return _plain_text(node.func.value)
    return False


def _error_class_names() -> set[str]:
    from core.exceptions import DomainError

    names = {"ValidationError", "PermissionDenied", "DjangoPermissionDenied", "DomainError"}
    pending = [DomainError]
    while pending:
        cls = pending.pop()
        names.add(cls.__name__)
        pending.extend(cls.__subclasses__())
    return names


MESSAGE_FUNCS = {"success": 1, "error": 1, "warning": 1, "info": 1, "debug": 1, "add_message": 2, "message_user": 1}
# OpenAPI documentation is the English contract for integrators (API.md); API *error messages* are still checked.
SCHEMA_CALLS = {"extend_schema", "extend_schema_view", "extend_schema_field", "OpenApiParameter", "OpenApiResponse",
                "OpenApiExample", "inline_serializer"}
# Labels passed as keywords (admin.display/action descriptions are checked on the registered admins instead: a
# ``description=`` keyword elsewhere is usually data, e.g. an event's description in demo data).
LABEL_KEYWORDS = {"label", "help_text", "verbose_name", "verbose_name_plural", "short_description", "empty_label",
                  "empty_value_display"}


def _call_name(node: ast.Call) -> str | None:
    func = node.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None


def _arg(node: ast.Call, index: int, keyword: str) -> ast.AST | None:
    if len(node.args) > index:
        return node.args[index]
    return next((k.value for k in node.keywords if k.arg == keyword), None)


def app_python_files(app_label: str) -> list[Path]:
    """Sources people see the output of; benchmarks (developer tooling) are left out."""
    root = Path(apps.get_app_config(app_label).path)
    return sorted(p for p in root.rglob("*.py") if "migrations" not in p.parts and "tests" not in p.parts
                  and not p.name.startswith("bench"))


def source_problems(app_label: str) -> list[str]:
    errors = _error_class_names()
    problems = []
    for path in app_python_files(app_label):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        rel = path.relative_to(BASE_DIR)
        api_docs = "api" in rel.parts  # serializer help_text and schema descriptions: the English API contract
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                for stmt in node.body:  # class-level default messages of errors
                    if (isinstance(stmt, ast.Assign) and any(getattr(t, "id", None) == "default_message"
                                                             for t in stmt.targets) and _plain_text(stmt.value)):
                        problems.append(f"{rel}:{stmt.lineno}: default_message is not wrapped in gettext")
            if not isinstance(node, ast.Call):
                continue
            name = _call_name(node)
            where = f"{rel}:{node.lineno}"
            if name in MESSAGE_FUNCS and _plain_text(_arg(node, MESSAGE_FUNCS[name], "message")):
                problems.append(f"{where}: {name}() message is not wrapped in gettext")
            elif name in errors and _plain_text(_arg(node, 0, "message")):
                problems.append(f"{where}: {name}() message is not wrapped in gettext")
            elif name == "register_page" and _plain_text(_arg(node, 0, "label")):
                problems.append(f"{where}: console page label is not wrapped in gettext")
            if api_docs or name in SCHEMA_CALLS:
                continue
            for keyword in node.keywords:
                if keyword.arg in LABEL_KEYWORDS and _plain_text(keyword.value):
                    problems.append(f"{where}: {keyword.arg}= is not wrapped in gettext")
    return problems


# --- templates ----------------------------------------------------------------------------------------------

VISIBLE_ATTRIBUTES = {"title", "alt", "placeholder", "aria-label", "aria-description", "label"}


class _VisibleText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("style", "script"):
            self._skip += 1
        values = dict(attrs)
        for name, value in attrs:
            shown = name in VISIBLE_ATTRIBUTES or (
                name == "value" and tag == "input" and values.get("type") in ("submit", "button", "reset"))
            if shown and value:
                self.found.append(value)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.found.append(data)


def untranslated_template_text(source: str) -> list[str]:
    """Visible text of a template outside {% translate %} / {% blocktranslate %} (variables count as no text)."""
    pieces = []
    depth = 0  # inside blocktranslate or comment
    for token in Lexer(source).tokenize():
        if token.token_type == TokenType.BLOCK:
            tag = token.contents.split()[0] if token.contents else ""
            if tag in ("blocktranslate", "blocktrans", "comment"):
                depth += 1
            elif tag in ("endblocktranslate", "endblocktrans", "endcomment"):
                depth -= 1
            pieces.append("0" if tag in ("translate", "trans") else "")
        elif token.token_type == TokenType.VAR:
            pieces.append("" if depth else "0")
        elif token.token_type == TokenType.TEXT and not depth:
            pieces.append(token.contents)
    parser = _VisibleText()
    parser.feed("".join(pieces))
    parser.close()
    texts = [" ".join(t.split()) for t in parser.found]
    return [t for t in texts if has_letters(t) and t not in TEMPLATE_TEXT_ALLOWED]


def _is_app_dir(name: str) -> bool:
    return name in OUR_APPS or (BASE_DIR / name / "apps.py").exists()


def template_owner(path: Path) -> str | None:
    """The app a template belongs to: ``templates/admin/<app>/…`` → app; other project templates → core."""
    rel = path.relative_to(BASE_DIR)
    if rel.parts[0] == "templates":
        inner = rel.parts[1:]
        if len(inner) >= 3 and inner[0] == "admin" and _is_app_dir(inner[1]):
            return inner[1]
        return "core"
    return rel.parts[0] if _is_app_dir(rel.parts[0]) else None


def app_templates(app_label: str) -> list[Path]:
    candidates = [*(BASE_DIR / "templates").rglob("*.html"), *(BASE_DIR / app_label / "templates").rglob("*.html")]
    return sorted({p for p in candidates if template_owner(p) == app_label})


def template_problems(app_label: str) -> list[str]:
    problems = []
    for path in app_templates(app_label):
        for text in untranslated_template_text(path.read_text(encoding="utf-8")):
            problems.append(f"{path.relative_to(BASE_DIR)}: {text[:80]!r} is outside {{% translate %}}")
    return problems
