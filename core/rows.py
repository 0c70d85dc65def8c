"""Model instances from one hand-written SELECT over several joined tables (#21, R-NFR-2).

The redeem and lock paths read one code row with its inventory, policy, tenant and batch on every request. As an ORM
query (``select_related`` four ways, ``select_for_update``) compiling the SQL cost more CPU than PostgreSQL spent
answering it. ``JoinedRows`` builds the column list once per process from the models' own metadata and turns a row
back into instances the way the ORM does: ``Model.from_db`` with each field's database converters applied.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connection
from django.db.models import Model


class JoinedRows:
    def __init__(self, tables: Sequence[tuple[type[Model], str]]) -> None:
        """``tables``: (model, SQL alias) in the order the instances come back."""
        self.tables = list(tables)
        self._layout: list[tuple[type[Model], list[str], list[tuple[int, list[Any], Any]]]] | None = None

    def _built(self) -> list[tuple[type[Model], list[str], list[tuple[int, list[Any], Any]]]]:
        if self._layout is None:
            layout = []
            for model, alias in self.tables:
                fields = list(model._meta.concrete_fields)
                converters = []
                for i, field in enumerate(fields):
                    col = field.get_col(alias)
                    found = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
                    if found:
                        converters.append((i, found, col))
                layout.append((model, [f.attname for f in fields], converters))
            self._layout = layout
        return self._layout

    def columns(self) -> str:
        """The SELECT list: every concrete column of every table, in model order."""
        quote = connection.ops.quote_name
        return ", ".join(f"{alias}.{quote(field.column)}" for model, alias in self.tables
                         for field in model._meta.concrete_fields)

    def load(self, row: Sequence[Any]) -> list[Model]:
        instances, start = [], 0
        for model, names, converters in self._built():
            values = list(row[start:start + len(names)])
            start += len(names)
            for i, functions, col in converters:
                for function in functions:
                    values[i] = function(values[i], col, connection)
            instances.append(model.from_db(connection.alias, names, values))
        return instances
