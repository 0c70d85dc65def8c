from django.urls import path

from events.api import views

urlpatterns = [
    path("events/<str:event_id>/participants", views.ParticipantsView.as_view(), name="api-event-participants"),
    path("events/<str:event_id>/participants/<str:member_id>", views.ParticipantDetailView.as_view(),
         name="api-event-participant"),
]
