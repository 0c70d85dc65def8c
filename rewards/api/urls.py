from django.urls import path

from rewards.api import views

urlpatterns = [
    path("rewards/triggers", views.RewardTriggerView.as_view(), name="api-reward-triggers"),
    path("members/<str:member_id>/points", views.MemberPointsView.as_view(), name="api-member-points"),
    path("members/<str:member_id>/points/spend", views.PointsSpendView.as_view(), name="api-points-spend"),
    path("members/<str:member_id>/points/refund", views.PointsRefundView.as_view(), name="api-points-refund"),
    path("members/<str:member_id>/points/exchange", views.PointsExchangeView.as_view(), name="api-points-exchange"),
]
