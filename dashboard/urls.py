from django.contrib import admin
from django.urls import path

from dashboard.views import dashboard_view, report_view, report_xlsx_view

app_name = "dashboard"

urlpatterns = [
    path("", admin.site.admin_view(dashboard_view), name="index"),
    # The campaign report of one event (issue #20); the event id is checked against the user's tenant.
    path("events/<int:event_id>/report/", admin.site.admin_view(report_view), name="event_report"),
    path("events/<int:event_id>/report.xlsx", admin.site.admin_view(report_xlsx_view), name="event_report_xlsx"),
]
