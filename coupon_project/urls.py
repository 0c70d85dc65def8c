from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from core import i18n
from core.error_pages import favicon
from core.health import health
from core.metrics import metrics_view

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
    path("admin/dashboard/", include("dashboard.urls")),
    path("metrics", metrics_view, name="metrics"),
    path("favicon.ico", favicon, name="favicon"),
    path("admin/ops/", include("ops.urls")),
    # The console's language switcher and the user's own settings (issue #11); before admin's catch-all.
    path("admin/language/", admin.site.admin_view(i18n.language_switch), name="console-language"),
    path("admin/preferences/", admin.site.admin_view(i18n.preferences), name="console-preferences"),
    path("admin/", admin.site.urls),
    path("health/", health, name="health"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's init script as a same-origin file: no inline script for the CSP (#17).
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/", include("core.api.urls")),
    path("api/v1/", include("coupons.api.urls")),
    path("api/v1/", include("events.api.urls")),
    path("api/v1/", include("draws.api.urls")),
    path("api/v1/", include("rewards.api.urls")),
    path("api/v1/", include("partners.api.urls")),
    path("api/v1/", include("exports.api.urls")),
]

handler404 = "core.api.errors.not_found_view"
# The console's styled, translated pages instead of Django's bare English ones (issue #20).
handler403 = "core.error_pages.permission_denied"
handler400 = "core.error_pages.bad_request"
# PostgreSQL or Redis not answering, raised anywhere (a middleware included) → 503 + Retry-After (issue #18).
handler500 = "core.middleware.server_error_view"
