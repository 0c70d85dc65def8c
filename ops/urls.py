from django.urls import path

from ops import views

app_name = "ops"

urlpatterns = [
    path("jobs/", views.wrap(views.jobs), name="jobs"),
    path("jobs/failed/", views.wrap(views.failed_jobs), name="failed_jobs"),
    path("jobs/failed/<str:queue>/<str:job_id>/", views.wrap(views.failed_job), name="failed_job"),
    path("jobs/failed/<str:queue>/<str:job_id>/<str:action>/", views.wrap(views.failed_job_action),
         name="failed_job_action"),
]
