"""URLs of the benchmark server only: the framework floor (``bench.floor``) beside every route of the product."""
from django.urls import include, path

from bench.floor import FLOOR_PATH, FloorView

urlpatterns = [
    path(FLOOR_PATH.lstrip("/"), FloorView.as_view(), name="bench-floor"),
    path("", include("coupon_project.urls")),  # by name: bench and coupon_project are independent layers (#22)
]
