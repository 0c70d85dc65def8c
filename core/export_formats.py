"""The list exports of the console (django-import-export's action), in the house's shape (issue #20).

Design: docs/design/reports-and-exports.md#core-export-formats.
"""
from __future__ import annotations

import io
from typing import Any

import tablib
from django.core.exceptions import FieldDoesNotExist
from django.utils.text import capfirst
from import_export.formats.base_formats import CSV, XLSX
from import_export.forms import SelectableFieldsExportForm
from openpyxl import load_workbook

from core.spreadsheets import lay_out, safe_row, workbook_bytes


def sanitised(dataset: tablib.Dataset) -> tablib.Dataset:
    """A copy of ``dataset`` with every cell through ``safe_cell`` (text a spreadsheet would run is made inert)."""
    copy = tablib.Dataset(headers=dataset.headers, title=dataset.title)
    for row in dataset:
        copy.append(safe_row(row))
    return copy


class SafeCSV(CSV):
    def export_data(self, dataset: Any, **kwargs: Any) -> str:
        return super().export_data(sanitised(dataset), **kwargs)


class LaidOutXLSX(XLSX):
    def export_data(self, dataset: Any, **kwargs: Any) -> bytes:
        data = super().export_data(sanitised(dataset), **kwargs)
        workbook = load_workbook(io.BytesIO(data))
        for sheet in workbook.worksheets:
            lay_out(sheet)
        return workbook_bytes(workbook)


EXPORT_FORMATS = [SafeCSV, LaidOutXLSX]


class TranslatedFieldsExportForm(SelectableFieldsExportForm):
    def _get_field_label(self, resource: Any, field_name: str) -> str:
        model = getattr(getattr(resource, "_meta", None), "model", None)
        if model is not None:
            try:
                return str(capfirst(model._meta.get_field(field_name).verbose_name))
            except (FieldDoesNotExist, AttributeError):
                pass
        return super()._get_field_label(resource, field_name)
