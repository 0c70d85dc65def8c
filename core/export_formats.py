"""The list exports of the console (django-import-export's action), in the house's shape (issue #20).

- Two formats only: CSV and XLSX, what a card company's team opens; the library's others (tsv, json, yaml, html,
  ods, xls) were offered under their raw names.
- The XLSX is laid out like every sheet the product writes (``core.spreadsheets.start_sheet``): header frozen,
  columns sized.
- The "fields to export" checkboxes are labelled with the model fields' names in the reader's language instead of
  the library's title-cased attribute names ("Created At").
"""
from __future__ import annotations

import io
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.utils.text import capfirst
from import_export.formats.base_formats import CSV, XLSX
from import_export.forms import SelectableFieldsExportForm


class LaidOutXLSX(XLSX):
    def export_data(self, dataset: Any, **kwargs: Any) -> bytes:
        from openpyxl import load_workbook
        from openpyxl.styles import Font
        from openpyxl.utils import get_column_letter

        from core.spreadsheets import column_widths

        data = super().export_data(dataset, **kwargs)
        workbook = load_workbook(io.BytesIO(data))
        for sheet in workbook.worksheets:
            header = [c.value for c in sheet[1]] if sheet.max_row >= 1 else []
            for i, width in enumerate(column_widths(header), start=1):
                sheet.column_dimensions[get_column_letter(i)].width = width
            for cell in sheet[1]:
                cell.font = Font(bold=True)
            sheet.freeze_panes = "A2"
        out = io.BytesIO()
        workbook.save(out)
        return out.getvalue()


EXPORT_FORMATS = [CSV, LaidOutXLSX]


class TranslatedFieldsExportForm(SelectableFieldsExportForm):
    def _get_field_label(self, resource: Any, field_name: str) -> str:
        model = getattr(getattr(resource, "_meta", None), "model", None)
        if model is not None:
            try:
                return str(capfirst(model._meta.get_field(field_name).verbose_name))
            except (FieldDoesNotExist, AttributeError):
                pass
        return super()._get_field_label(resource, field_name)
