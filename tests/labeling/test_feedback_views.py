"""Policy feedback in the browser (Django test client): the flag box on the review page, each policy's inbox with
its resolve and dismiss forms (roles, CSRF, escaping), and the draft editor's figures next to each rule."""

import pytest
from django.test import Client

from labeling.models import Candidate, PolicyFeedback, Review
from labeling.services import labeling_run_create, review_claim_next, review_submit
from labeling.services.feedback import feedback_create
from policyhub import roles

K = 3
HTMX = {"HTTP_HX_REQUEST": "true"}
NOTE = "Does <script>alert(1)</script> 'one level' mean mid → senior?"


def split_vote(request, call_number):
    """Two samples say strong_match citing R2, the third no_match citing R1 and R3."""
    if call_number % K == K - 1:
        return {"label": "no_match", "rationale": "A must-have is missing.", "cited_rules": ["R1", "R3"]}
    return {"label": "strong_match", "rationale": "The seniority fits.", "cited_rules": ["R2"]}


@pytest.fixture
def run(pairs, published, openai_config, fake_openai, process_run):
    fake_openai.responder = split_vote
    made = labeling_run_create(
        version=published, config=openai_config(samples_per_pair=K), selection={"all": True}, user=None
    )
    return process_run(made)


def shown(response) -> int | None:
    item = response.context["item"]
    return item.candidate.pk if item else None


def test_the_review_page_offers_the_flag_with_the_versions_rules_and_the_teachers_marked(run, annotator, client_for):
    page = client_for(annotator).get("/review/").content.decode()
    assert 'id="feedback-panel"' in page and "Flag a policy problem <kbd>f</kbd>" in page
    assert 'data-rule="R1"' in page and 'data-rule="R2"' in page and 'data-rule="R3"' in page
    r2 = page[page.index('data-rule="R2"') : page.index('data-rule="R3"')]
    assert "cited by the teacher" in r2  # the samples that gave strong_match cited R2
    assert "cited by the teacher" not in page[page.index('data-rule="R1"') : page.index('data-rule="R2"')]
    for kind in ("unclear_rule", "rules_conflict", "not_covered", "label_set_missing"):
        assert f'value="{kind}"' in page
    assert "<dt><kbd>f</kbd></dt>" in page  # listed in the keys help


def test_flagging_swaps_only_the_flag_box_and_leaves_the_claim_and_review_alone(run, annotator, client_for):
    client = client_for(annotator)
    item = shown(client.get("/review/"))
    data = {"kind": "unclear_rule", "rule_ids": "r2", "note": NOTE}

    response = client.post(f"/review/{item}/flag/", data, **HTMX)

    assert response.status_code == 200
    page = response.content.decode()
    feedback = PolicyFeedback.objects.get()
    assert page.startswith('<div id="feedback-box"') and "<article" not in page  # only the box
    assert f"Flag #{feedback.pk} sent" in page and "on R2" in page
    assert f'data-feedback="{feedback.pk}"' in page  # listed under the form as this item's flag
    assert (feedback.candidate_id, feedback.rule_ids, feedback.note) == (item, ["R2"], NOTE)
    candidate = Candidate.objects.get(pk=item)
    assert (candidate.claimed_by, candidate.review_state) == (annotator, "pending")
    assert shown(client.get("/review/")) == item  # still theirs to label
    assert client.post(f"/review/{item}/submit/", {"label": "no_match"}, **HTMX).status_code == 200
    assert Review.objects.get().label == "no_match"


def test_a_refused_flag_says_why_and_keeps_what_was_typed(run, annotator, client_for):
    client = client_for(annotator)
    item = shown(client.get("/review/"))
    response = client.post(f"/review/{item}/flag/", {"kind": "unclear_rule", "rule_ids": "R7", "note": NOTE}, **HTMX)
    assert response.status_code == 400
    page = response.content.decode()
    assert 'id="feedback-error"' in page and "R7 is not a rule of match v1" in page
    assert '<details class="card feedback" id="feedback-panel" open>' in page
    assert 'value="R7"' in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert" not in page
    assert not PolicyFeedback.objects.exists()


def test_an_annotator_cannot_flag_an_item_they_were_never_shown(run, annotator, make_user, client_for):
    other = make_user("bea", roles.ANNOTATOR)
    theirs = review_claim_next(user=other)
    response = client_for(annotator).post(f"/review/{theirs.pk}/flag/", {"kind": "not_covered", "note": "x"}, **HTMX)
    assert response.status_code == 404 and not PolicyFeedback.objects.exists()


def test_without_htmx_a_flag_goes_back_to_the_queue_with_a_message(run, annotator, client_for):
    client = client_for(annotator)
    item = shown(client.get("/review/"))
    response = client.post(f"/review/{item}/flag/", {"kind": "not_covered", "note": "Career changers?"}, follow=True)
    assert response.redirect_chain[-1][0] == "/review/"
    assert "the policy owners see it in their inbox" in response.content.decode()


@pytest.fixture
def flags(run, annotator, make_user, owner):
    """Three flags of v1: two by the annotator (one on R2 open, one dismissed), one by bea (rules conflict)."""
    bea = make_user("bea", roles.ANNOTATOR)
    mine_item, bea_item = review_claim_next(user=annotator), review_claim_next(user=bea)
    mine, _ = feedback_create(user=annotator, candidate_id=mine_item.pk, kind="unclear_rule", rule_ids=["R2"],
                              note=NOTE)  # fmt: skip
    dismissed, _ = feedback_create(user=annotator, candidate_id=mine_item.pk, kind="not_covered", rule_ids=[],
                                   note="Remote-only?")  # fmt: skip
    theirs, _ = feedback_create(user=bea, candidate_id=bea_item.pk, kind="rules_conflict", rule_ids=["R1", "R3"],
                                note="R1 says skills, R3 location: which wins?")  # fmt: skip
    from labeling.services.feedback import feedback_dismiss

    feedback_dismiss(user=owner, feedback_id=dismissed.pk, reason="R3 <b>covers</b> remote jobs.")
    return {"mine": mine, "dismissed": dismissed, "theirs": theirs}


@pytest.mark.parametrize(
    ("who", "status", "sees"),
    [("owner", 200, {"mine", "theirs"}), ("engineer", 200, {"mine", "theirs"}), ("annotator", 200, {"mine"}),
     ("nobody", 403, None)],
)  # fmt: skip
def test_the_inbox_shows_open_flags_as_each_role_may_see_them(flags, request, client_for, who, status, sees):
    response = client_for(request.getfixturevalue(who)).get("/policies/match/feedback/")
    assert response.status_code == status
    if sees is None:
        return
    assert {f.pk for f in response.context["page"]} == {flags[name].pk for name in sees}
    page = response.content.decode()
    assert ("resolve-form" in page) == (who == "owner") and ("dismiss-form" in page) == (who == "owner")
    if "mine" in sees:
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert" not in page


def test_anonymous_visitors_are_sent_to_log_in(db, policy, client):
    response = client.get("/policies/match/feedback/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_the_inbox_filters_by_status_version_and_rule(flags, owner, annotator, client_for):
    client = client_for(owner)

    def listed(query: str) -> set[int]:
        return {f.pk for f in client.get(f"/policies/match/feedback/?{query}").context["page"]}

    assert listed("status=dismissed") == {flags["dismissed"].pk}
    page = client.get("/policies/match/feedback/?status=dismissed").content.decode()
    assert "R3 &lt;b&gt;covers&lt;/b&gt; remote jobs." in page  # the reason, escaped
    assert listed("status=") == {f.pk for f in flags.values()}
    assert listed("rule=R3") == {flags["theirs"].pk}
    assert listed("rule=R2&status=") == {flags["mine"].pk}
    assert listed("resolved_in=2") == set()
    client.post(f"/policies/match/feedback/{flags['mine'].pk}/resolve/", {"version": "2", "note": "R2 reworded"})
    assert listed("resolved_in=2") == {flags["mine"].pk}
    assert listed("status=open") == {flags["theirs"].pk}


def test_a_policy_owner_resolves_and_dismisses_from_the_inbox(flags, owner, client_for):
    client = client_for(owner)
    data = {"version": "2", "note": "R2: one level, e.g. mid → senior.", "next": "/policies/match/feedback/?rule=R2"}
    response = client.post(f"/policies/match/feedback/{flags['mine'].pk}/resolve/", data, follow=True)
    assert response.redirect_chain[0][0] == "/policies/match/feedback/?rule=R2"
    assert f"Feedback #{flags['mine'].pk} is resolved in v2." in response.content.decode()
    mine = PolicyFeedback.objects.get(pk=flags["mine"].pk)
    assert (mine.status, mine.resolved_in_version.number, mine.closed_by) == ("resolved", 2, owner)

    empty = client.post(f"/policies/match/feedback/{flags['theirs'].pk}/dismiss/", {"reason": " "}, follow=True)
    assert "Say why you dismiss it" in empty.content.decode()
    assert PolicyFeedback.objects.get(pk=flags["theirs"].pk).status == "open"
    too_early = client.post(f"/policies/match/feedback/{flags['theirs'].pk}/resolve/", {"version": "1"}, follow=True)
    assert "resolve it in a later version" in too_early.content.decode()
    client.post(f"/policies/match/feedback/{flags['theirs'].pk}/dismiss/", {"reason": "R1 wins; see the body."})
    assert PolicyFeedback.objects.get(pk=flags["theirs"].pk).dismiss_reason == "R1 wins; see the body."


@pytest.mark.parametrize("who", ["annotator", "engineer"])
def test_only_policy_owners_resolve_or_dismiss(flags, request, client_for, who):
    client = client_for(request.getfixturevalue(who))
    pk = flags["mine"].pk
    assert client.post(f"/policies/match/feedback/{pk}/resolve/", {"version": "2"}).status_code == 403
    assert client.post(f"/policies/match/feedback/{pk}/dismiss/", {"reason": "no"}).status_code == 403
    assert PolicyFeedback.objects.get(pk=pk).status == "open"


def test_the_actions_need_the_csrf_token(flags, owner):
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    pk = flags["mine"].pk
    assert client.post(f"/policies/match/feedback/{pk}/dismiss/", {"reason": "no"}).status_code == 403
    assert PolicyFeedback.objects.get(pk=pk).status == "open"


def test_feedback_of_another_policy_is_not_found_here(flags, owner, client_for):
    from policyhub import services as policy_services

    policy_services.policy_create(slug="other", name="Other", task_description="?", owner=owner, body="",
                                  labels=[], rules=[])  # fmt: skip
    response = client_for(owner).post(f"/policies/other/feedback/{flags['mine'].pk}/dismiss/", {"reason": "x"})
    assert response.status_code == 404


def test_the_draft_editor_shows_each_rules_open_flags_and_how_often_annotators_overrode_the_teacher(
    flags, run, annotator, owner, client_for
):
    """The teacher's label strong_match came with R2 cited on every pair. The annotator reviews two items: no_match
    (an override) and strong_match (agrees): R2 has 1 of 2 overridden; R1 and R3 were cited only by the minority
    samples, so no reviewed item cites them."""
    held = Candidate.objects.get(claimed_by=annotator)
    review_submit(user=annotator, candidate_id=held.pk, label="no_match")
    nxt = review_claim_next(user=annotator)
    review_submit(user=annotator, candidate_id=nxt.pk, label="strong_match")

    page = client_for(owner).get("/policies/match/draft/").content.decode()

    r1 = page[page.index('data-rule-feedback="R1"') : page.index('data-rule-feedback="R2"')]
    r2 = page[page.index('data-rule-feedback="R2"') : page.index('data-rule-feedback="R3"')]
    r3 = page[page.index('data-rule-feedback="R3"') : page.index('id="rule-template"')]
    assert "1 open flag<" in r2 and 'href="/policies/match/feedback/?status=open&amp;rule=R2"' in r2
    assert "overrode the teacher on <strong>1 of 2</strong> reviewed items citing R2 (50 %)" in r2
    assert "1 open flag<" in r1 and "no reviewed item cites R1 yet" in r1  # bea's conflict names R1 and R3
    assert "1 open flag<" in r3 and "No open flags" not in r3
    assert 'id="feedback-summary"' in page and '<strong data-value="open">2</strong> open flags' in page


def test_without_a_later_version_the_inbox_asks_for_a_draft_instead_of_a_resolve_form(flags, owner, client_for):
    from policyhub.models import PolicyVersion

    PolicyVersion.objects.filter(policy__slug="match", status="draft").delete()
    page = client_for(owner).get("/policies/match/feedback/").content.decode()
    assert "resolve-form" not in page and "start a draft</a> that fixes it" in page
    assert "dismiss-form" in page
