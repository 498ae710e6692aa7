from django.urls import path

from . import review_views, run_views, views

urlpatterns = [
    path("imports/", views.import_list, name="import_list"),
    path("imports/<int:pk>/", views.import_detail, name="import_detail"),
    path("teachers/", run_views.teacher_list, name="teacher_list"),
    path("teachers/<int:pk>/", run_views.teacher_list, name="teacher_edit"),
    path("runs/", run_views.run_list, name="run_list"),
    path("runs/new/", run_views.run_new, name="run_new"),
    path("runs/<int:pk>/", run_views.run_detail, name="run_detail"),
    path("runs/<int:pk>/cancel/", run_views.run_cancel, name="run_cancel"),
    path("runs/<int:pk>/resume/", run_views.run_resume, name="run_resume"),
    path("runs/<int:pk>/labelstudio/push/", run_views.run_labelstudio_push, name="run_labelstudio_push"),
    path("runs/<int:pk>/labelstudio/pull/", run_views.run_labelstudio_pull, name="run_labelstudio_pull"),
    path("review/", review_views.review_queue, name="review_queue"),
    path("review/<int:pk>/submit/", review_views.review_submit, name="review_submit"),
    path("review/<int:pk>/skip/", review_views.review_skip, name="review_skip"),
    path("review/undo/", review_views.review_undo, name="review_undo"),
    path("review/adjudication/", review_views.adjudication_list, name="adjudication_list"),
    path("review/adjudication/<int:pk>/", review_views.adjudicate, name="adjudicate"),
]
