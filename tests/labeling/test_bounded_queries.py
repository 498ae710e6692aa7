"""The trends page's agreement figures and the draft editor's per-rule override shares are counted in grouped SQL:
their query count does not grow with the runs, samples or reviews (``django_assert_max_num_queries`` at two data
sizes), and the figures are the ones the full computations give (``version_agreement``; the per-rule test in
test_feedback_services.py)."""

import pytest

from labeling.models import Candidate, LabelingRun
from labeling.selectors.agreement import version_agreement, versions_agreement_summary
from labeling.selectors.feedback import rule_feedback
from labeling.selectors.trends import policy_trends
from labeling.services import review_claim_next, review_submit
from policyhub import roles
from policyhub import services as policy_services
from tests.embedded import EmbeddedApp


@pytest.mark.parametrize("runs, items, versions", [(1, 2, 1), (3, 4, 2)])
def test_the_trends_agreement_figures_take_the_same_queries_at_any_size(
    reviewed_runs, published, policy, owner, django_assert_max_num_queries, runs, items, versions
):
    reviewed_runs(runs, items)
    if versions == 2:  # v2 published too, its figures from the last run
        v2 = policy_services.policy_version_publish(
            version=policy.versions.get(number=2), user=owner, override_reason="test data"
        )
        LabelingRun.objects.filter(pk=LabelingRun.objects.latest("pk").pk).update(policy_version=v2)
    released = list(policy.versions.exclude(status="draft").order_by("number"))
    assert len(released) == versions

    with django_assert_max_num_queries(3):
        summaries = versions_agreement_summary(version_ids=[v.pk for v in released])
    with django_assert_max_num_queries(10):
        trends = policy_trends(policy=policy)

    for version, trend in zip(released, trends, strict=True):
        summary, full = summaries[version.pk], version_agreement(version=version)
        assert summary.human_items == full.evaluation.accuracy.n == full.human_approved > 0
        assert summary.human_accuracy == full.evaluation.accuracy.accuracy
        assert full.alpha is not None and summary.alpha == pytest.approx(full.alpha, abs=1e-12)
        assert (trend.human_items, trend.human_accuracy, trend.alpha) == (
            summary.human_items, summary.human_accuracy, summary.alpha,
        )  # fmt: skip


def test_alpha_is_none_where_it_is_undefined(review_items, published, make_user):
    run = review_items(2, reviewers=2)
    assert versions_agreement_summary(version_ids=[published.pk])[published.pk].alpha is None  # no reviews yet
    for name in ("ana", "bea"):  # everyone says the same label: α's expected disagreement is 0
        annotator = make_user(name, roles.ANNOTATOR)
        while (item := review_claim_next(user=annotator, run_id=run.pk)) is not None:
            review_submit(user=annotator, candidate_id=item.pk, label="no_match")
    summary = versions_agreement_summary(version_ids=[published.pk])[published.pk]
    assert summary.alpha is None is version_agreement(version=published).alpha
    assert (summary.human_items, summary.human_correct) == (2, 0)  # the teacher said strong_match


@pytest.mark.parametrize("runs, items", [(1, 2), (3, 4)])
def test_the_rule_override_shares_take_the_same_queries_at_any_size(
    reviewed_runs, policy, django_assert_max_num_queries, runs, items
):
    reviewed_runs(runs, items)

    with django_assert_max_num_queries(2):
        stats = rule_feedback(policy=policy)

    # every item is reviewed; the teacher said strong_match: an item is overridden unless both said strong_match
    expected: dict[str, list[int]] = {"R1": [0, 0], "R2": [0, 0], "R3": [0, 0]}
    for candidate in Candidate.objects.filter(run__policy_version__policy=policy):
        rules = candidate.run.samples.get(pair=candidate.pair).cited_rules
        overridden = candidate.reviews.exclude(label=candidate.label).exists()
        for rule in rules:
            expected[rule][0] += 1
            expected[rule][1] += overridden
    assert {rule: [s.reviewed, s.overridden] for rule, s in stats.items()} == expected
    assert sum(s.reviewed for s in stats.values()) == runs * items * 3 // 2


SQLITE_SCRIPT = """
import io
from django.contrib.auth.models import Group, User
from labeling.models import Candidate, TeacherConfig, TeacherSample
from labeling.selectors.agreement import version_agreement, versions_agreement_summary
from labeling.selectors.feedback import rule_feedback
from labeling.services import import_file, labeling_run_create, review_claim_next, review_submit, rule_overrides
from policyhub import services
from tests.conftest import LABELS, RULES

def user(name, role):
    made = User.objects.create_user(name)
    made.groups.add(Group.objects.get(name=role))
    return made

owner, ana, bea = user("olivia", "policy_owner"), user("ana", "annotator"), user("bea", "annotator")
policy = services.policy_create(slug="match", name="Match", task_description="Fit?", owner=owner, body="# P",
                                labels=LABELS, rules=RULES)
services.policy_version_publish(version=policy.versions.get(number=1), user=owner)
version = policy.versions.get(number=1)
for kind, text in (("members", "member_id,headline\\nr0,A\\nr1,B\\nr2,C\\n"),
                   ("jobs", "job_id,title,description\\nj,Job,Work\\n"),
                   ("pairs", "member_id,job_id\\nr0,j\\nr1,j\\nr2,j\\n")):
    assert import_file(kind=kind, stream=io.BytesIO(text.encode()), name=kind + ".csv").ok, kind
config = TeacherConfig.objects.create(name="h", provider="heuristic")
run = labeling_run_create(version=version, config=config, selection={"all": True}, reviewers_per_item=2)
Candidate.objects.filter(run=run).update(status="labeled", label="strong_match", routing="needs_review",
    reason_low_confidence=True, review_state="pending", reviews_needed=2, confidence=0.5)
for k, c in enumerate(Candidate.objects.filter(run=run).order_by("id")):
    TeacherSample.objects.create(run=run, pair=c.pair, sample_index=0, label="strong_match", rationale="fits",
                                 cited_rules=["R1"] if k % 2 else ["R2", "R3"])
for labels, annotator in ((["strong_match", "no_match", "strong_match"], ana), (["strong_match"] * 3, bea)):
    for label in labels:
        review_submit(user=annotator, candidate_id=review_claim_next(user=annotator, run_id=run.pk).pk, label=label)
summary = versions_agreement_summary(version_ids=[version.pk])[version.pk]
stats = rule_feedback(policy=policy)
kept = rule_overrides(policy=policy)  # the draft editor's kept figures (computed on first read)
print(json.dumps({"kept": {rule: list(counts) for rule, counts in kept.counts.items()},
                  "alpha": summary.alpha, "full_alpha": version_agreement(version=version).alpha,
                  "human": [summary.human_items, summary.human_correct],
                  "rules": {rule: [s.reviewed, s.overridden] for rule, s in stats.items()}}))
"""


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_grouped_sql_gives_the_same_figures_on_the_embedded_sqlite(tmp_path):
    """Items r0, r1, r2 (cited R2+R3, R1, R2+R3); ana overrides r1, bea agrees everywhere."""
    app = EmbeddedApp(tmp_path)
    app.manage("migrate", "--noinput")

    figures = app.script(SQLITE_SCRIPT)

    assert figures["alpha"] == pytest.approx(figures["full_alpha"], abs=1e-12) and figures["full_alpha"] is not None
    assert figures["human"] == [2, 2]  # r0 and r2 agreed (both strong_match); r1 still waits for adjudication
    assert figures["rules"] == {"R1": [1, 1], "R2": [2, 0], "R3": [2, 0]} == figures["kept"]
