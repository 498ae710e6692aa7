"""Version pages: retiring from the history, the teacher prompt page (draft preview, frozen snapshot)."""

from django.utils.html import escape

from policyhub import services
from policyhub.models import PolicyVersion, PromptSnapshot
from policyhub.prompts import build_system_prompt


def _history(client, policy):
    return client.get(f"/policies/{policy.slug}/")


def test_retire_makes_the_version_retired_and_the_history_shows_it(policy, owner, client_for):
    client = client_for(owner)

    response = client.post(f"/policies/{policy.slug}/v1/retire/", follow=True)

    assert response.redirect_chain == [(f"/policies/{policy.slug}/", 302)]
    v1 = policy.versions.get(number=1)
    assert v1.status == PolicyVersion.Status.RETIRED
    assert v1.retired_at is not None
    html = response.content.decode()
    assert "Retired v1: still readable, no longer offered for new runs." in html
    assert '<span class="badge retired">Retired</span>' in html
    assert f'action="/policies/{policy.slug}/v1/retire/"' not in html  # no retire button on a retired version


def test_a_retired_version_stays_readable_for_readers(policy, owner, annotator, client_for):
    services.policy_version_retire(version=policy.versions.get(number=1), user=owner)

    client = client_for(annotator)
    page = client.get(f"/policies/{policy.slug}/v1/")
    history = _history(client, policy)

    assert page.status_code == 200
    assert b"Retired" in page.content
    assert [v.status for v in history.context["versions"]] == ["retired"]


def test_retiring_a_draft_is_refused_with_a_message(policy, owner, client_for):
    response = client_for(owner).post(f"/policies/{policy.slug}/v2/retire/", follow=True)

    assert "Only a published version can be retired" in response.content.decode()
    assert policy.versions.get(number=2).status == PolicyVersion.Status.DRAFT


def test_retire_needs_a_post(policy, owner, client_for):
    response = client_for(owner).get(f"/policies/{policy.slug}/v1/retire/")

    assert response.status_code == 405
    assert policy.versions.get(number=1).status == PolicyVersion.Status.PUBLISHED


def test_history_offers_retire_only_on_published_versions_to_owners(policy, owner, client_for):
    html = _history(client_for(owner), policy).content.decode()

    assert f'action="/policies/{policy.slug}/v1/retire/"' in html
    assert f'action="/policies/{policy.slug}/v2/retire/"' not in html


def test_draft_prompt_page_shows_exactly_the_built_prompt_of_the_saved_draft(policy, owner, client_for):
    draft = policy.versions.get(number=2)
    draft = services.policy_version_draft_save(
        version=draft,
        user=owner,
        revision=draft.revision,
        body="# Match policy\n\nNever guess a member's age.\n",
        labels=draft.labels,
        rules=[
            *draft.rules,
            {"id": "", "text": "Visas: 'sponsorship' must be stated.", "positive_examples": ["A & B"]},
        ],
    )

    response = client_for(owner).get(f"/policies/{policy.slug}/v2/prompt/")

    assert response.status_code == 200
    expected = build_system_prompt(draft)
    assert response.context["prompt"] == expected
    assert f'<pre class="prompt" id="system-prompt">{escape(expected)}</pre>' in response.content.decode()
    assert "R4: Visas: 'sponsorship' must be stated." in expected
    assert "Preview of the draft as it is saved now." in response.content.decode()


def test_published_prompt_page_uses_the_frozen_snapshot(policy, owner, annotator, client_for, monkeypatch):
    v1 = policy.versions.get(number=1)
    snapshot = services.prompt_snapshot_store(version_id=v1.pk)
    # The prompt builder changes after publishing: the published version must keep asking what it asked.
    monkeypatch.setattr("policyhub.views.build_system_prompt", lambda version: "A CHANGED PROMPT BUILDER\n")

    response = client_for(annotator).get(f"/policies/{policy.slug}/v1/prompt/")

    assert response.status_code == 200
    html = response.content.decode()
    assert f'<pre class="prompt" id="system-prompt">{escape(snapshot.system_prompt)}</pre>' in html
    assert "A CHANGED PROMPT BUILDER" not in html
    assert f'Frozen when the version was published (sha256 <span class="mono">{snapshot.prompt_sha256[:12]}' in html


def test_published_prompt_without_a_snapshot_yet_is_rendered_and_says_so(policy, annotator, client_for):
    v1 = policy.versions.get(number=1)
    assert not PromptSnapshot.objects.filter(version=v1).exists()

    response = client_for(annotator).get(f"/policies/{policy.slug}/v1/prompt/")

    assert response.status_code == 200
    assert response.context["prompt"] == build_system_prompt(v1)
    assert "its frozen copy is being written" in response.content.decode()


def test_draft_prompt_page_ignores_a_stale_snapshot_row(policy, owner, client_for):
    draft = policy.versions.get(number=2)
    PromptSnapshot.objects.create(version=draft, content_hash="x", system_prompt="STALE SNAPSHOT", prompt_sha256="y")

    response = client_for(owner).get(f"/policies/{policy.slug}/v2/prompt/")

    assert b"STALE SNAPSHOT" not in response.content
    assert response.context["prompt"] == build_system_prompt(draft)


def test_version_page_shows_labels_and_rules(policy, annotator, client_for):
    response = client_for(annotator).get(f"/policies/{policy.slug}/v1/")

    html = response.content.decode()
    assert response.status_code == 200
    v1 = policy.versions.get(number=1)
    assert v1.content_hash in html
    for label in v1.labels:
        assert label["definition"] in html
    for rule in v1.rules:
        assert f'<tr id="rule-{rule["id"]}"><td class="mono">{rule["id"]}</td><td>{escape(rule["text"])}</td>' in html
    assert "Edit draft" not in html
