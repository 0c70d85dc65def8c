from django.urls import path

from rewards.api import views

urlpatterns = [
    path("rewards/triggers", views.RewardTriggerView.as_view(), name="api-reward-triggers"),
    path("members/<str:member_id>/points", views.MemberPointsView.as_view(), name="api-member-points"),
]
