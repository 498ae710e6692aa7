"""URLs of the labeling app's pages (the views are in ``labeling/views/``, one module per area)."""

from django.urls import path

from .views import (
    agreement,
    feedback,
    gates,
    gold,
    imports,
    labelmap,
    labelstudio,
    previews,
    redteam,
    reviews,
    runs,
    students,
    teachers,
    trends,
)

urlpatterns = [
    path("imports/", imports.import_list, name="import_list"),
    path("imports/<int:pk>/", imports.import_detail, name="import_detail"),
    path("teachers/", teachers.teacher_list, name="teacher_list"),
    path("teachers/<int:pk>/", teachers.teacher_list, name="teacher_edit"),
    path("runs/", runs.run_list, name="run_list"),
    path("runs/new/", runs.run_new, name="run_new"),
    path("runs/<int:pk>/", runs.run_detail, name="run_detail"),
    path("runs/<int:pk>/candidates/", runs.run_candidates, name="run_candidates"),
    path("runs/<int:pk>/cancel/", runs.run_cancel, name="run_cancel"),
    path("runs/<int:pk>/resume/", runs.run_resume, name="run_resume"),
    path("runs/<int:pk>/agreement/", agreement.run_agreement, name="run_agreement"),
    path("policies/<slug:slug>/v<int:number>/agreement/", agreement.version_agreement, name="version_agreement"),
    path("policies/<slug:slug>/trends/", trends.policy_trends, name="policy_trends"),
    path("runs/<int:pk>/labelstudio/push/", runs.run_labelstudio_push, name="run_labelstudio_push"),
    path("runs/<int:pk>/labelstudio/pull/", runs.run_labelstudio_pull, name="run_labelstudio_pull"),
    path("account/labelstudio/", labelstudio.labelstudio_account, name="labelstudio_account"),
    path("account/labelstudio/unlink/", labelstudio.labelstudio_account_unlink, name="labelstudio_account_unlink"),
    path("review/", reviews.review_queue, name="review_queue"),
    path("review/<int:pk>/submit/", reviews.review_submit, name="review_submit"),
    path("review/<int:pk>/skip/", reviews.review_skip, name="review_skip"),
    path("review/undo/", reviews.review_undo, name="review_undo"),
    path("review/<int:pk>/flag/", feedback.review_flag, name="review_flag"),
    path("items/<int:pk>/flag/", feedback.item_flag, name="item_flag"),
    path("review/adjudication/", reviews.adjudication_list, name="adjudication_list"),
    path("review/adjudication/<int:pk>/", reviews.adjudicate, name="adjudicate"),
    # policy feedback: each policy's inbox
    path("policies/<slug:slug>/feedback/", feedback.feedback_inbox, name="feedback_inbox"),
    path("policies/<slug:slug>/feedback/<int:pk>/resolve/", feedback.feedback_resolve, name="feedback_resolve"),
    path("policies/<slug:slug>/feedback/<int:pk>/dismiss/", feedback.feedback_dismiss, name="feedback_dismiss"),
    path("policies/<slug:slug>/feedback/<int:pk>/reopen/", feedback.feedback_reopen, name="feedback_reopen"),
    # the gold set, scores on it and draft previews
    path("gold/items/<int:pk>/mark/", gold.gold_mark, name="gold_mark"),
    path("runs/<int:pk>/gold/", gold.gold_run_items, name="gold_run_items"),
    path("runs/<int:pk>/gold/mark-all/", gold.gold_mark_run, name="gold_mark_run"),
    path("policies/<slug:slug>/gold/", gold.gold_set, name="gold_set"),
    path("policies/<slug:slug>/gold/<int:pk>/remove/", gold.gold_remove, name="gold_remove"),
    path("policies/<slug:slug>/gold/score/", gold.gold_score, name="gold_score"),
    path("policies/<slug:slug>/gold/score/<int:pk>/", gold.gold_score_run, name="gold_score_run"),
    path("policies/<slug:slug>/draft/gold-preview/", previews.draft_preview_panel, name="draft_preview_panel"),
    path("policies/<slug:slug>/draft/gold-preview/start/", previews.draft_preview_start, name="preview_start"),
    path("policies/<slug:slug>/draft/gold-preview/<int:pk>/", previews.draft_preview_detail, name="preview"),
    path("policies/<slug:slug>/draft/relabel/", labelmap.draft_relabel, name="draft_relabel"),
    # red-team sets and runs
    path("policies/<slug:slug>/redteam/", redteam.redteam_list, name="redteam_list"),
    path("policies/<slug:slug>/redteam/sets/new/", redteam.redteam_set_create, name="redteam_set_create"),
    path(
        "policies/<slug:slug>/redteam/sets/custom/", redteam.redteam_custom_set_create, name="redteam_custom_set_create"
    ),
    path("policies/<slug:slug>/redteam/plan/", redteam.redteam_plan, name="redteam_plan"),
    path("policies/<slug:slug>/redteam/start/", redteam.redteam_run_start, name="redteam_run_start"),
    path("redteam/runs/<int:pk>/", redteam.redteam_run, name="redteam_run"),
    path("redteam/runs/<int:pk>/cancel/", redteam.redteam_run_cancel, name="redteam_run_cancel"),
    path("redteam/runs/<int:pk>/resume/", redteam.redteam_run_resume, name="redteam_run_resume"),
    path("redteam/runs/<int:pk>/compare/", redteam.redteam_compare, name="redteam_compare"),
    # quality gates (the check on the publish page and the record on the version page are policyhub's views)
    path("policies/<slug:slug>/gates/", gates.policy_gates_edit, name="policy_gates"),
    # students: predictions of models distilled from an export, scored and their disagreements reviewed
    path("students/", students.student_list, name="student_list"),
    path("students/<int:pk>/", students.student_detail, name="student_detail"),
    path("students/<int:pk>/queue/", students.student_queue, name="student_queue"),
]
