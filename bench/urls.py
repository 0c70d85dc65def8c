"""URLs of the benchmark server only: the framework floor and the contract floors (``bench.floor``) beside every route
of the product."""
from django.urls import include, path

from bench.floor import (CLAIM_FLOOR_PATH, FLOOR_PATH, REDEEM_FLOOR_PATH, ClaimFloorView, FloorView,
                         RedeemFloorView)

urlpatterns = [
    path(FLOOR_PATH.lstrip("/"), FloorView.as_view(), name="bench-floor"),
    path(CLAIM_FLOOR_PATH.lstrip("/"), ClaimFloorView.as_view(), name="bench-claim-floor"),
    path(REDEEM_FLOOR_PATH.lstrip("/"), RedeemFloorView.as_view(), name="bench-redeem-floor"),
    path("", include("coupon_project.urls")),  # by name: bench and coupon_project are independent layers (#22)
]
