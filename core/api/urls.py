from django.urls import path

from core.api.views import ClientInfoView

urlpatterns = [
    path("client", ClientInfoView.as_view(), name="api-client-info"),
]
