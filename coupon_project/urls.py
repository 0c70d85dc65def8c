from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from core.health import health

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
    path("admin/", admin.site.urls),
    path("health/", health, name="health"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/", include("core.api.urls")),
    path("api/v1/", include("coupons.api.urls")),
    path("api/v1/", include("events.api.urls")),
    path("api/v1/", include("draws.api.urls")),
    path("api/v1/", include("rewards.api.urls")),
    path("api/v1/", include("partners.api.urls")),
]

handler404 = "core.api.errors.not_found_view"
