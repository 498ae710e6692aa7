"""The quality gates in the browser: the owners' form on the policy page (CSRF, bad values, roles), the publish page
showing the gate check from the draft's latest preview (the fake OpenAI teacher doing badly), the override with a
reason, and the gate record on the version and diff pages for everyone who may read the version."""

import re

import pytest
from django.test import Client

from labeling.models import GateRecord, QualityGates

from .gates_helpers import edit_draft, set_gates

GATES_URL = "/policies/match/gates/"
PUBLISH_URL = "/policies/match/draft/publish/"


def csrf_client(user) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def csrf_token(client: Client, path: str) -> str:
    page = client.get(path).content.decode()
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)


def gate_form(**values) -> dict:
    data = {
        "min_gold_accuracy": "0.8", "max_rule_accuracy_drop": "0.05", "max_asr_injection": "0.05",
        "max_asr_protected_attribute": "0.05", "max_asr_irrelevant_noise": "0.05", "max_asr_hallucination_bait": "0.1",
        "max_flip_rate": "0.05", "max_hallucination_rate": "",
    }  # fmt: skip
    return {**data, **values}


def test_an_owner_sets_the_gates_from_the_policy_page_and_readers_see_them(policy, owner, annotator, client_for):
    client = csrf_client(owner)
    page = client.get("/policies/match/").content.decode()
    assert 'id="no-gates"' in page and 'action="/policies/match/gates/"' in page
    assert 'name="min_gold_accuracy" value="0.8"' in page  # a new policy's form starts from the defaults

    token = csrf_token(client, "/policies/match/")
    saved = client.post(GATES_URL, {**gate_form(min_gold_accuracy="0.9"), "csrfmiddlewaretoken": token})

    assert saved.status_code == 302 and saved.url == "/policies/match/"
    gates = QualityGates.objects.get(policy=policy)
    assert (gates.min_gold_accuracy, gates.max_hallucination_rate, gates.updated_by) == (0.9, None, owner)
    shown = client_for(annotator).get("/policies/match/").content.decode()
    assert 'id="gate-thresholds"' in shown and "Minimum gold accuracy" in shown
    assert '<td class="mono">0.900</td>' in shown and '<span class="muted">off</span>' in shown
    assert 'id="gates-form"' not in shown  # readers get no form


def test_the_gates_form_needs_a_csrf_token(policy, owner):
    refused = csrf_client(owner).post(GATES_URL, gate_form())
    assert refused.status_code == 403 and not QualityGates.objects.exists()


@pytest.mark.parametrize(
    ("value", "message"),
    [("1.5", "A threshold is a fraction from 0 to 1"), ("-0.1", "A threshold is a fraction from 0 to 1"),
     ("eighty", "Enter a fraction from 0 to 1, e.g. 0.8, or leave it empty.")],
)  # fmt: skip
def test_bad_thresholds_are_refused_by_field_and_nothing_changes(policy, owner, client_for, value, message):
    set_gates(policy, owner, min_gold_accuracy=0.7)

    response = client_for(owner).post(GATES_URL, gate_form(max_flip_rate=value))

    assert response.status_code == 400
    html = response.content.decode()
    assert message in html and 'name="max_flip_rate"' in html
    assert QualityGates.objects.get(policy=policy).max_flip_rate is None


@pytest.mark.parametrize("role", ["annotator", "engineer", "nobody"])
def test_only_policy_owners_set_gates_or_open_the_publish_page(policy, owner, client_for, request, role):
    set_gates(policy, owner, min_gold_accuracy=0.7)
    client = client_for(request.getfixturevalue(role))
    draft = policy.versions.get(number=2)

    responses = [
        client.get(GATES_URL),
        client.post(GATES_URL, gate_form(min_gold_accuracy="0.1")),
        client.get(PUBLISH_URL),
        client.post(PUBLISH_URL, {"revision": draft.revision, "override": "1", "override_reason": "mine"}),
    ]

    assert [r.status_code for r in responses] == [403, 403, 403, 403]
    assert QualityGates.objects.get(policy=policy).min_gold_accuracy == 0.7
    assert policy.versions.get(number=2).status == "draft"


def test_anonymous_users_are_sent_to_log_in(policy):
    client = Client()
    for path in (GATES_URL, PUBLISH_URL):
        response = client.get(path)
        assert response.status_code == 302 and response.url.startswith("/login/")


def test_without_gates_the_publish_page_publishes_as_before(gated_draft, owner, client_for):
    client = client_for(owner)

    page = client.get(PUBLISH_URL).content.decode()
    published = client.post(PUBLISH_URL, {"revision": gated_draft.revision})

    assert "has no quality gates: publishing goes ahead without a check" in page
    assert published.status_code == 302 and published.url == "/policies/match/v2/"
    version_page = client.get("/policies/match/v2/").content.decode()
    assert "No quality gates were set when v2 was published" in version_page


def test_a_failed_gate_is_shown_blocks_publishing_and_an_override_needs_a_reason(
    previewed, gated_draft, policy, owner, annotator, client_for
):
    preview = previewed(bad=True)
    set_gates(policy, owner, min_gold_accuracy=0.8, max_rule_accuracy_drop=0.05)
    client = csrf_client(owner)

    page = client.get(PUBLISH_URL).content.decode()
    assert f'href="/policies/match/draft/gold-preview/{preview.pk}/">preview #{preview.pk}</a>' in page
    assert '<tr data-gate="min_gold_accuracy" data-status="failed">' in page
    assert '<td class="mono">0.250</td>' in page and "≥ 0.800" in page
    assert "R1: 0.500 → 0.250 (drop 0.250)" in page
    assert 'name="override_reason"' in page and 'id="publish"' not in page

    token = csrf_token(client, PUBLISH_URL)
    blocked = client.post(PUBLISH_URL, {"revision": gated_draft.revision, "csrfmiddlewaretoken": token})
    empty = client.post(
        PUBLISH_URL,
        {"revision": gated_draft.revision, "override": "1", "override_reason": "   ", "csrfmiddlewaretoken": token},
    )
    assert blocked.status_code == empty.status_code == 400
    assert "Cannot publish v2: 2 quality gates block it" in blocked.content.decode()
    assert "an override needs a reason" in empty.content.decode()
    assert policy.versions.get(number=2).status == "draft" and not GateRecord.objects.filter(version__number=2)

    reason = "Gold labels for R1 are under review <script>alert(1)</script>"
    done = client.post(
        PUBLISH_URL,
        {"revision": gated_draft.revision, "override": "1", "override_reason": reason, "csrfmiddlewaretoken": token},
    )
    assert done.status_code == 302 and done.url == "/policies/match/v2/"
    record = GateRecord.objects.get(version__number=2)
    assert (record.overridden_by, record.override_reason) == (owner, reason)

    for user in (owner, annotator):  # anyone who may read v2 sees the record, the reason escaped
        html = client_for(user).get("/policies/match/v2/").content.decode()
        assert "Published with failing gates" in html and "Override</strong> by olivia" in html
        assert "Gold labels for R1 are under review &lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert "<script>alert(1)" not in html
        assert '<tr data-gate="min_gold_accuracy" data-status="failed">' in html
        diff = client_for(user).get("/policies/match/compare/?from=1&to=2").content.decode()
        assert 'id="gate-record-2"' in diff and "Gold labels for R1 are under review &lt;script&gt;" in diff
        assert 'id="gate-record-1"' in diff and "No quality gates were set when v1 was published" in diff


def test_a_stale_preview_makes_the_publish_page_ask_for_a_new_one(previewed, gated_draft, policy, owner, client_for):
    previewed()
    set_gates(policy, owner, min_gold_accuracy=0.7)
    edit_draft(policy, owner, "# Match policy\n\nChanged after the preview.\n")

    page = client_for(owner).get(PUBLISH_URL).content.decode()

    assert "The draft changed since its latest preview" in page and "preview it again" in page
    assert 'id="publish-form"' not in page
    assert 'href="/policies/match/draft/#gold-preview">Preview the draft on the gold set</a>' in page


def test_save_and_publish_in_the_editor_goes_to_the_publish_page_when_gates_block(
    previewed, gated_draft, policy, owner, client_for
):
    from tests.policyhub.test_draft_editor_view import editor_post_data

    previewed(bad=True)
    set_gates(policy, owner, min_gold_accuracy=0.8)
    client = client_for(owner)
    data = editor_post_data(gated_draft, body=gated_draft.body)  # the same content: the preview stays fresh
    data["publish"] = "1"

    response = client.post("/policies/match/draft/", data, follow=True)

    assert response.redirect_chain[-1][0] == PUBLISH_URL
    assert "Cannot publish v2: 1 quality gate blocks it" in response.content.decode()
    assert policy.versions.get(number=2).status == "draft"


def test_the_passing_gates_publish_with_one_click(previewed, gated_draft, policy, owner, client_for):
    previewed()
    set_gates(policy, owner, min_gold_accuracy=0.7)
    client = client_for(owner)

    page = client.get(PUBLISH_URL).content.decode()
    done = client.post(PUBLISH_URL, {"revision": gated_draft.revision})

    assert "Every gate passes" in page and 'id="publish"' in page and "override_reason" not in page
    assert done.status_code == 302 and GateRecord.objects.get(version__number=2).passed
    assert "Every gate passed" in client.get("/policies/match/v2/").content.decode()


def test_the_admin_shows_gates_and_records_read_only(policy, owner, make_user, client):
    set_gates(policy, owner, min_gold_accuracy=0.7)
    record = GateRecord.objects.get(version__number=1)
    client.force_login(make_user("sam", is_staff=True, is_superuser=True))

    assert client.get("/admin/labeling/gaterecord/").status_code == 200
    assert client.get("/admin/labeling/qualitygates/").status_code == 200
    assert client.get("/admin/labeling/gaterecord/add/").status_code == 403
    assert client.post(f"/admin/labeling/gaterecord/{record.pk}/delete/", {"post": "yes"}).status_code == 403
    client.post(f"/admin/labeling/qualitygates/{policy.quality_gates.pk}/change/", {"min_gold_accuracy": "0.1"})
    assert QualityGates.objects.get(policy=policy).min_gold_accuracy == 0.7
    assert GateRecord.objects.filter(pk=record.pk).exists()
