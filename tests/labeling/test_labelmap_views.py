"""The label mapping in the browser: a policy owner writes it in the draft editor (bad lines and bad entries
shown by the mapping, nothing saved), sees it on the diff page, relabels the split gold items on their page (CSRF
needed), and the preview and publish pages list what still needs a relabel while the relabel gate blocks."""

import pytest

from labeling.models import GoldLabel, GoldRelabel
from policyhub.models import PolicyVersion
from tests.policyhub.test_draft_editor_view import editor_post_data

from .gates_helpers import finish
from .gold_helpers import make_gold, teacher
from .labelmap_helpers import MAPPED_DRAFT, MAPPING, NEW_LABELS, SPLIT_PAIR, pair
from .test_gates_views import csrf_client, csrf_token
from .test_gold_scoring import GOLD, PUBLISHED

EDITOR_URL = "/policies/match/draft/"
RELABEL_URL = "/policies/match/draft/relabel/"
PUBLISH_URL = "/policies/match/draft/publish/"


@pytest.fixture
def gold(pairs, policy, owner):
    make_gold(policy, GOLD, user=owner)
    return policy.versions.get(number=2)


def test_an_owner_writes_the_mapping_in_the_editor_and_sees_it_on_the_diff(gold, owner, annotator, client_for):
    client = client_for(owner)
    editor = client.get(EDITOR_URL).content.decode()
    assert 'id="label-mapping-editor"' in editor and "Label mapping from v1" in editor

    data = editor_post_data(gold, labels=NEW_LABELS, label_mapping=MAPPING)
    saved = client.post(EDITOR_URL, data)

    assert saved.status_code == 302
    draft = PolicyVersion.objects.get(pk=gold.pk)
    assert draft.label_mapping == MAPPING
    assert (
        "strong_match -&gt; great_match\npartial_match -&gt; maybe_match, stretch_match"
        in client.get(EDITOR_URL).content.decode()
    )
    diff = client.get("/policies/match/compare/?from=1&to=2").content.decode()
    assert '<table id="label-mapping">' in diff
    assert '<tr class="mapping-rename"><td class="mono">strong_match</td>' in diff
    assert '<tr class="mapping-split"><td class="mono">partial_match</td><td><span class="badge">split</span></td>' \
        '<td class="mono">maybe_match, stretch_match</td></tr>' in diff  # fmt: skip


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("strong_match great_match", "Line 1: write old_key -&gt; new_key"),
        ("strong_match -> great_match\nstrong_match -> no_match", "Line 2: strong_match is mapped twice"),
        (
            "strong_match -> grand_match",
            "strong_match → &#x27;grand_match&#x27;: &#x27;grand_match&#x27; is not a label",
        ),
        ("", "strong_match is removed but gold labels use it"),
    ],
)
def test_a_bad_mapping_is_shown_in_the_editor_and_nothing_is_saved(gold, owner, client_for, text, message):
    data = editor_post_data(gold, labels=NEW_LABELS)
    data["label_mapping"] = text

    answer = client_for(owner).post(EDITOR_URL, data)

    assert answer.status_code == 400
    assert message in answer.content.decode()
    gold.refresh_from_db()
    assert (gold.revision, gold.label_mapping) == (1, {})


def test_the_relabel_page_lists_split_items_and_an_owner_relabels_them_with_csrf(gold, owner, client_for):
    client_for(owner).post(EDITOR_URL, editor_post_data(gold, labels=NEW_LABELS, label_mapping=MAPPING))
    split = pair(*SPLIT_PAIR)
    client = csrf_client(owner)

    page = client.get(RELABEL_URL).content.decode()
    assert f'id="relabel-{split.pk}"' in page and "needs relabel" in page
    assert 'data-label="maybe_match"' in page and 'data-label="stretch_match"' in page
    assert client.post(RELABEL_URL, {"pair": split.pk, "label": "maybe_match"}).status_code == 403  # no token
    assert not GoldRelabel.objects.exists()

    wrong = client.post(RELABEL_URL, {"pair": split.pk, "label": "no_match", "csrfmiddlewaretoken":
                                      csrf_token(client, RELABEL_URL)})  # fmt: skip
    assert wrong.status_code == 400 and "is not one of them" in wrong.content.decode()
    done = client.post(RELABEL_URL, {"pair": split.pk, "label": "stretch_match",
                                     "csrfmiddlewaretoken": csrf_token(client, RELABEL_URL)})  # fmt: skip

    assert done.status_code == 302
    assert GoldRelabel.objects.get().label == "stretch_match"
    assert "partial_match → stretch_match" in client.get(RELABEL_URL).content.decode()
    assert GoldLabel.objects.get(pair=split).label == "partial_match"  # until publishing


def test_preview_and_publish_pages_list_what_needs_a_relabel_and_the_gate_blocks(
    gold, owner, client_for, openai_config, fake_openai
):
    from labeling.services import draft_preview_start

    client = client_for(owner)
    data = editor_post_data(gold, labels=NEW_LABELS, label_mapping=MAPPING, body="# Match\n\nRemote-first teams "
                            "count as compatible.\n")  # fmt: skip
    assert client.post(EDITOR_URL, data).status_code == 302
    fake_openai.responder = teacher(published=PUBLISHED, draft=MAPPED_DRAFT)
    draft = PolicyVersion.objects.get(pk=gold.pk)
    preview = finish(draft_preview_start(user=owner, draft=draft, config=openai_config()))

    page = client.get(f"/policies/match/draft/gold-preview/{preview.pk}/").content.decode()
    assert 'id="needs-relabel"' in page and "1 of 1 gold item needs a new label" in page
    assert '<td id="draft-accuracy">1.000 <span class="muted">(3 of 3)</span></td>' in page
    assert f'href="{RELABEL_URL}" id="relabel-link"' in page

    publish_page = client.get(PUBLISH_URL).content.decode()
    assert 'data-gate="gold_relabel" data-status="failed"' in publish_page and 'id="needs-relabel"' in publish_page
    refused = client.post(PUBLISH_URL, {"revision": draft.revision, "override": "1", "override_reason": " "})
    assert refused.status_code == 400 and "an override needs a reason" in refused.content.decode()

    client.post(RELABEL_URL, {"pair": pair(*SPLIT_PAIR).pk, "label": "maybe_match"})
    assert 'data-gate="gold_relabel" data-status="passed"' in client.get(PUBLISH_URL).content.decode()
    published = client.post(PUBLISH_URL, {"revision": draft.revision})
    assert published.status_code == 302 and published.url == "/policies/match/v2/"
    assert GoldLabel.objects.get(pair=pair(*SPLIT_PAIR)).label == "maybe_match"
    version_page = client.get("/policies/match/v2/").content.decode()
    assert "label mapping: 1 of 1 split gold item relabelled" in version_page
    assert 'data-gate="gold_relabel" data-status="passed"' in version_page
