from django.urls import path

from exports.api import views

urlpatterns = [
    path("exports", views.ExportCreateView.as_view(), name="api-exports"),
    path("exports/<str:export_id>", views.ExportDetailView.as_view(), name="api-export"),
    path("exports/<str:export_id>/download", views.ExportDownloadView.as_view(), name="api-export-download"),
]
