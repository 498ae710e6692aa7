from django.urls import path

from . import agreement_views, gold_views, preview_views, review_views, run_views, views

urlpatterns = [
    path("imports/", views.import_list, name="import_list"),
    path("imports/<int:pk>/", views.import_detail, name="import_detail"),
    path("teachers/", run_views.teacher_list, name="teacher_list"),
    path("teachers/<int:pk>/", run_views.teacher_list, name="teacher_edit"),
    path("runs/", run_views.run_list, name="run_list"),
    path("runs/new/", run_views.run_new, name="run_new"),
    path("runs/<int:pk>/", run_views.run_detail, name="run_detail"),
    path("runs/<int:pk>/candidates/", run_views.run_candidates, name="run_candidates"),
    path("runs/<int:pk>/cancel/", run_views.run_cancel, name="run_cancel"),
    path("runs/<int:pk>/resume/", run_views.run_resume, name="run_resume"),
    path("runs/<int:pk>/agreement/", agreement_views.run_agreement, name="run_agreement"),
    path("policies/<slug:slug>/v<int:number>/agreement/", agreement_views.version_agreement, name="version_agreement"),
    path("runs/<int:pk>/labelstudio/push/", run_views.run_labelstudio_push, name="run_labelstudio_push"),
    path("runs/<int:pk>/labelstudio/pull/", run_views.run_labelstudio_pull, name="run_labelstudio_pull"),
    path("review/", review_views.review_queue, name="review_queue"),
    path("review/<int:pk>/submit/", review_views.review_submit, name="review_submit"),
    path("review/<int:pk>/skip/", review_views.review_skip, name="review_skip"),
    path("review/undo/", review_views.review_undo, name="review_undo"),
    path("review/adjudication/", review_views.adjudication_list, name="adjudication_list"),
    path("review/adjudication/<int:pk>/", review_views.adjudicate, name="adjudicate"),
    # the gold set, scores on it and draft previews
    path("gold/items/<int:pk>/mark/", gold_views.gold_mark, name="gold_mark"),
    path("runs/<int:pk>/gold/", gold_views.gold_run_items, name="gold_run_items"),
    path("runs/<int:pk>/gold/mark-all/", gold_views.gold_mark_run, name="gold_mark_run"),
    path("policies/<slug:slug>/gold/", gold_views.gold_set, name="gold_set"),
    path("policies/<slug:slug>/gold/<int:pk>/remove/", gold_views.gold_remove, name="gold_remove"),
    path("policies/<slug:slug>/gold/score/", gold_views.gold_score, name="gold_score"),
    path("policies/<slug:slug>/gold/score/<int:pk>/", gold_views.gold_score_run, name="gold_score_run"),
    path("policies/<slug:slug>/draft/gold-preview/", preview_views.draft_preview_panel, name="draft_preview_panel"),
    path("policies/<slug:slug>/draft/gold-preview/start/", preview_views.draft_preview_start, name="preview_start"),
    path("policies/<slug:slug>/draft/gold-preview/<int:pk>/", preview_views.draft_preview_detail, name="preview"),
]
