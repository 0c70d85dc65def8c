from django.urls import path

from draws.api import views

urlpatterns = [
    path("events/<str:event_id>/draws", views.EventDrawsView.as_view(), name="api-event-draws"),
]
