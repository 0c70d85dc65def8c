from django.urls import path

from coupons.api import views

urlpatterns = [
    path("claims", views.ClaimView.as_view(), name="api-claims"),
    path("grants", views.GrantView.as_view(), name="api-grants"),
    path("revocations", views.RevocationsView.as_view(), name="api-revocations"),
    path("grants/<str:job>", views.GrantStatusView.as_view(), name="api-grant-status"),
    path("checkout/validate", views.CheckoutValidateView.as_view(), name="api-checkout-validate"),
    path("checkout/best", views.CheckoutBestView.as_view(), name="api-checkout-best"),
    path("claimable", views.ClaimableView.as_view(), name="api-claimable"),
    path("members/<str:member_id>/coupons", views.MemberCouponsView.as_view(), name="api-member-coupons"),
    path("coupons/batch/<str:action>", views.BatchActionView.as_view(), name="api-coupon-batch"),
    path("coupons/<str:code>", views.CouponDetailView.as_view(), name="api-coupon-detail"),
    path("coupons/<str:code>/lock", views.LockView.as_view(), name="api-coupon-lock"),
    path("coupons/<str:code>/release", views.ReleaseView.as_view(), name="api-coupon-release"),
    path("coupons/<str:code>/redeem", views.RedeemView.as_view(), name="api-coupon-redeem"),
    path("coupons/<str:code>/refund", views.RefundView.as_view(), name="api-coupon-refund"),
    path("coupons/<str:code>/revoke", views.RevokeView.as_view(), name="api-coupon-revoke"),
]
