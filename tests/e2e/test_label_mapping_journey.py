"""A policy owner renames one label and splits another in the draft editor, writes the mapping, sees it on the
diff page, previews the draft on the gold set while a real Celery worker labels it with a fake OpenAI teacher,
finds the split gold items listed, relabels them in the gold set under the draft's labels, and publishes; the gold
set then holds the new labels, with the old ones in its log."""

import io
import re

import pytest
from playwright.sync_api import expect

from labeling.models import GateRecord, GoldLabel, GoldLabelEvent, Pair, TeacherConfig
from labeling.services import import_file
from tests.celery_worker import Worker, purge_queue, worker_database_url
from tests.fakes.openai_server import FakeOpenAI
from tests.labeling.gold_helpers import DRAFT_MARK, pair_of

pytestmark = [pytest.mark.e2e, pytest.mark.worker, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

GOLD = {"m1": "strong_match", "m2": "partial_match", "m3": "partial_match", "m4": "no_match"}
#: The draft's answers in its own labels; v1 answers the gold label.
DRAFT = {"m1": "great_match", "m2": "maybe_match", "m3": "stretch_match", "m4": "no_match"}
RELABEL = {"m2": "maybe_match", "m3": "stretch_match"}


def responder(request, call_number):
    member, _ = pair_of(request)
    is_draft = DRAFT_MARK in request["messages"][0]["content"]
    label = DRAFT[member] if is_draft else GOLD[member]
    return {"label": label, "rationale": f"{'Draft' if is_draft else 'v1'}: {label}.", "cited_rules": ["R1"]}


def gold_set(policy):
    for kind, text in [
        ("members", "member_id,headline\n" + "".join(f"{m},Member {m}\n" for m in GOLD)),
        ("jobs", "job_id,title,description\nj1,Data engineer,Pipelines\n"),
        ("pairs", "member_id,job_id\n" + "".join(f"{m},j1\n" for m in GOLD)),
    ]:
        assert import_file(kind=kind, stream=io.BytesIO(text.encode()), name=f"{kind}.csv").ok
    for member, label in GOLD.items():
        GoldLabel.objects.create(policy=policy, pair=Pair.objects.get(member__external_id=member), label=label)


def test_owner_renames_and_splits_labels_relabels_split_gold_and_publishes(
    page, login, policy, owner, tmp_path, monkeypatch
):
    monkeypatch.setenv("OPENAI_API_KEY", "test")
    gold_set(policy)
    purge_queue()
    worker = Worker(tmp_path, database_url=worker_database_url(), env={"OPENAI_API_KEY": "test"})
    with FakeOpenAI(latency=0.02) as server:
        server.responder = responder
        TeacherConfig.objects.create(
            name="fake-gpt", provider="openai", model="fake-teacher", base_url=server.base_url, samples_per_pair=1,
            temperature=0, concurrency=1, request_timeout=10,
        )  # fmt: skip
        try:
            worker.start()
            login(owner)

            # 1. Rename strong_match, split partial_match (one row renamed, one added), write the mapping.
            page.goto(f"/policies/{policy.slug}/draft/")
            page.fill("#id_body", f"# Match policy\n\n{DRAFT_MARK}\n")
            page.fill('input[name="labels-0-key"]', "great_match")
            page.fill('input[name="labels-1-key"]', "maybe_match")
            page.get_by_role("button", name="Add label").click()
            page.fill('input[name="labels-3-key"]', "stretch_match")
            page.fill('textarea[name="labels-3-definition"]', "Gaps that need a senior hire's patience.")
            page.fill("#id_label_mapping", "strong_match -> great_match\n")
            page.get_by_role("button", name="Save draft").click()
            # the split is not mapped yet: gold uses partial_match, so the save is refused and says why
            expect(page.locator("p.errorlist")).to_contain_text("partial_match is removed but gold labels use it")
            page.fill("#id_label_mapping", "strong_match -> great_match\npartial_match -> maybe_match, stretch_match")
            page.get_by_role("button", name="Save draft").click()
            expect(page.locator(".messages")).to_contain_text("Saved draft v2")

            # 2. The diff page shows the mapping.
            page.goto(f"/policies/{policy.slug}/compare/?from=1&to=2")
            mapping = page.locator("#label-mapping")
            expect(mapping.locator("tr.mapping-rename")).to_contain_text("strong_match")
            expect(mapping.locator("tr.mapping-rename")).to_contain_text("great_match")
            expect(mapping.locator("tr.mapping-split")).to_contain_text("maybe_match, stretch_match")

            # 3. Preview on the gold set: the rename is scored right, the split items are listed, not scored.
            page.goto(f"/policies/{policy.slug}/draft/")
            panel = page.locator("#gold-preview-panel")
            panel.locator('select[name="config"]').select_option(label="fake-gpt (openai:fake-teacher)")
            panel.get_by_role("button", name="Preview on gold set").click()
            page.wait_for_url(re.compile(r"/policies/match/draft/gold-preview/\d+/$"))
            expect(page.locator("#preview-status")).to_have_text("Done", timeout=30_000)
            expect(page.locator("#draft-accuracy")).to_contain_text("1.000 (2 of 2)")
            listed = page.locator("#needs-relabel")
            expect(listed).to_contain_text("2 of 2 gold items need a new label")
            expect(listed.locator("tr.pending")).to_have_count(2)

            # 4. Publishing waits for them.
            page.goto(f"/policies/{policy.slug}/draft/publish/")
            expect(page.locator('#gate-results tr[data-gate="gold_relabel"]')).to_have_attribute(
                "data-status", "failed"
            )
            expect(page.locator("#publish")).to_have_count(0)

            # 5. Relabel them from the list, under the draft's labels.
            page.locator("#relabel-link").click()
            page.wait_for_url(re.compile(r"/policies/match/draft/relabel/$"))
            for member, label in RELABEL.items():
                pair = Pair.objects.get(member__external_id=member)
                page.locator(f"#relabel-{pair.pk}").get_by_role("button", name=label).click()
                expect(page.locator(".messages")).to_contain_text(f"partial_match → {label}")
            expect(page.locator("section.relabel-item.pending")).to_have_count(0)

            # 6. The preview now scores every gold item, the gate passes, and v2 publishes.
            page.goto(f"/policies/{policy.slug}/draft/publish/")
            expect(page.locator('#gate-results tr[data-gate="gold_relabel"]')).to_have_attribute(
                "data-status", "passed"
            )
            page.locator("#publish").click()
            page.wait_for_url(re.compile(r"/policies/match/v2/$"))
            expect(page.locator(".messages")).to_contain_text("Published v2")
            assert page.js_errors == []
        finally:
            worker.stop()
    gold = {g.pair.member.external_id: g.label for g in GoldLabel.objects.select_related("pair__member")}
    assert gold == {"m1": "great_match", "m2": "maybe_match", "m3": "stretch_match", "m4": "no_match"}
    assert GoldLabelEvent.objects.filter(action="replaced", reason__startswith="Label mapping of v2").count() == 3
    record = GateRecord.objects.get(version__policy=policy, version__number=2)
    assert record.passed and [r["key"] for r in record.results] == ["gold_relabel"]
    assert policy.versions.get(number=1).label_keys == ["strong_match", "partial_match", "no_match"]
