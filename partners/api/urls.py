from django.urls import path

from partners.api import views

urlpatterns = [
    path("partner-uploads", views.UploadCreateView.as_view(), name="api-partner-uploads"),
    path("partner-uploads/<str:upload_id>", views.UploadDetailView.as_view(), name="api-partner-upload"),
    path("partner-uploads/<str:upload_id>/failures", views.UploadFailuresView.as_view(),
         name="api-partner-upload-failures"),
    path("partner-uploads/<str:upload_id>/reprocess", views.UploadReprocessView.as_view(),
         name="api-partner-upload-reprocess"),
    path("distributions", views.DistributionCreateView.as_view(), name="api-distributions"),
    path("distributions/<str:distribution_id>", views.DistributionDetailView.as_view(), name="api-distribution"),
    path("distributions/<str:distribution_id>/codes", views.DistributionCodesView.as_view(),
         name="api-distribution-codes"),
]
