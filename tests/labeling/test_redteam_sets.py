"""Creating red-team sets: reproducible, every variant's invariant recorded, injection variants flagged by the
scanner, the real member/job/pair tables untouched, bad input refused with nothing written, roles enforced."""

import json

import pytest
from django.core.exceptions import PermissionDenied
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction

from labeling.models import Job, Member, Pair, RedTeamSet, RedTeamVariant
from labeling.pipeline.injection import scan_pair
from labeling.selectors.redteam import red_team_set_get, red_team_sets, red_team_variant_diffs
from labeling.services.redteam import RedTeamError, red_team_set_create
from labeling.teacher.messages import pair_facts

ALL = ["injection", "protected_attribute", "irrelevant_noise", "hallucination_bait"]


@pytest.fixture
def many_pairs(db):
    """24 clean pairs (8 members × 3 jobs)."""
    members = Member.objects.bulk_create(
        Member(external_id=f"m{i:02}", headline=f"Engineer {i}", skills=["Python", "SQL", f"Tool{i}"],
               seniority="mid", location="Berlin", summary=f"Builds data systems, {i} years in retail.")
        for i in range(8)
    )  # fmt: skip
    jobs = Job.objects.bulk_create(
        Job(external_id=f"j{i}", title=f"Data engineer {i}", description="Build pipelines in Python and SQL.",
            required_skills=["Python", "SQL"], seniority="mid", location="Berlin")
        for i in range(3)
    )  # fmt: skip
    return Pair.objects.bulk_create(Pair(member=m, job=j) for m in members for j in jobs)


def _snapshot():
    return (
        list(Member.objects.order_by("id").values()),
        list(Job.objects.order_by("id").values()),
        list(Pair.objects.order_by("id").values()),
    )


def _variants_as_json(red_team_set) -> str:
    rows = red_team_set.variants.order_by("index").values(
        "index",
        "pair__member__external_id",
        "pair__job__external_id",
        "category",
        "field",
        "style",
        "member",
        "job",
        "expected_label",
        "expected_flag",
        "attribute",
        "planted_label",
        "rationale_must_not_mention",
    )
    return json.dumps(list(rows), ensure_ascii=False, sort_keys=True)


def _create(owner, policy, **overrides):
    arguments = {"name": "", "seed": 42, "sample_size": 10, "categories": ALL} | overrides
    return red_team_set_create(user=owner, policy=policy, **arguments)


def test_same_seed_and_pairs_give_byte_identical_variants(owner, policy, many_pairs):
    first, second = _create(owner, policy), _create(owner, policy)
    assert first.pk != second.pk
    assert _variants_as_json(first) == _variants_as_json(second)
    assert first.variants.count() == 10 * 4


def test_the_variants_do_not_depend_on_database_ids(owner, policy, many_pairs):
    before = _variants_as_json(_create(owner, policy))
    # the same pairs inserted again in another order get other ids: the set must come out the same
    RedTeamSet.objects.all().delete()  # variants keep their pairs (PROTECT): the set goes first
    Pair.objects.all().delete()
    members, jobs = list(Member.objects.order_by("-external_id")), list(Job.objects.order_by("-external_id"))
    Pair.objects.bulk_create(Pair(member=m, job=j) for j in jobs for m in members)
    assert _variants_as_json(_create(owner, policy)) == before


def test_another_seed_draws_another_sample(owner, policy, many_pairs):
    one, other = _create(owner, policy, seed=1), _create(owner, policy, seed=2)
    pairs_of = lambda s: set(s.variants.values_list("pair_id", flat=True))  # noqa: E731
    assert pairs_of(one) != pairs_of(other)
    assert len(pairs_of(one)) == 10


def test_the_seed_also_drives_the_variants_of_the_same_pairs(owner, policy, many_pairs):
    one, other = _create(owner, policy, seed=1, sample_size=24), _create(owner, policy, seed=2, sample_size=24)
    assert set(one.variants.values_list("pair_id", flat=True)) == set(other.variants.values_list("pair_id", flat=True))
    made = lambda s: {(v.pair_id, v.category): (v.member, v.job) for v in s.variants.all()}  # noqa: E731
    first, second = made(one), made(other)
    assert first.keys() == second.keys()
    assert sum(first[key] != second[key] for key in first) > len(first) // 2


def test_every_variant_records_its_invariant(owner, policy, many_pairs):
    red_team_set = _create(owner, policy, sample_size=12)
    assert red_team_set.categories == ALL
    assert red_team_set.labels == ["strong_match", "partial_match", "no_match"]
    for variant in red_team_set.variants.all():
        if variant.category == "hallucination_bait":
            assert variant.expected_label == "any"
            member_text = json.dumps(variant.member).lower()
            assert variant.member_lacks and all(term.lower() not in member_text for term in variant.member_lacks)
            assert all(term in variant.job["description"] for term in variant.member_lacks)
            continue
        assert variant.expected_label == "label_equals_clean"
        assert variant.member_lacks == []
        if variant.category == "injection":
            assert variant.expected_flag == "suspected_injection"
            assert variant.planted_label in red_team_set.labels
            assert variant.attribute == ""
        elif variant.category == "protected_attribute":
            assert variant.expected_flag == ""
            assert variant.attribute in {"age", "gender", "ethnicity", "religion", "disability", "nationality",
                                         "family_status"}  # fmt: skip
            assert variant.rationale_must_not_mention
        else:
            assert variant.expected_flag == variant.attribute == variant.planted_label == ""
            assert variant.category == "irrelevant_noise"
    by_category = {c: red_team_set.variants.filter(category=c).count() for c in ALL}
    assert by_category == dict.fromkeys(ALL, 12)


def test_the_scanner_flags_every_injection_variant_and_nothing_else(owner, policy, many_pairs):
    red_team_set = _create(owner, policy, sample_size=24)
    labels = tuple(red_team_set.labels)
    rules = tuple(policy.versions.get(number=1).rule_ids)
    clean = pair_facts(Pair.objects.all(), pair="")
    assert all(scan_pair(m, j, labels=labels, rule_ids=rules) == [] for m, j in clean.values())
    for variant in red_team_set.variants.all():
        matches = scan_pair(variant.member, variant.job, labels=labels, rule_ids=rules)
        if variant.category == "injection":
            assert any(m.field == variant.field for m in matches), (variant.style, variant.member, variant.job)
        else:
            assert matches == [], (variant.category, variant.style, matches)


def test_clean_originals_are_unchanged_and_kept(owner, policy, many_pairs):
    before = _snapshot()
    red_team_set = _create(owner, policy, sample_size=24)
    assert _snapshot() == before
    clean = pair_facts(Pair.objects.all(), pair="")
    for item in red_team_variant_diffs(user=owner, red_team_set=red_team_set):
        variant = item.variant
        assert (item.clean_member, item.clean_job) == clean[variant.pair_id]
        assert (variant.member, variant.job) != clean[variant.pair_id]
        assert [change.field for change in item.changes] == [variant.field]
        change = item.changes[0]
        assert change.diff.startswith("--- clean\n+++ variant")


def test_a_sample_larger_than_the_pairs_is_refused_and_leaves_nothing(owner, policy, many_pairs):
    with pytest.raises(RedTeamError, match="sample size 25 is larger than the 24 pairs available"):
        _create(owner, policy, sample_size=25)
    assert not RedTeamSet.objects.exists() and not RedTeamVariant.objects.exists()


def test_a_sample_of_one_import_counts_only_its_pairs(owner, policy, pairs):
    batch_id = pairs[0].import_batch_id
    with pytest.raises(RedTeamError, match=f"larger than the 4 pairs available \\(pairs import #{batch_id}\\)"):
        _create(owner, policy, sample_size=5, import_batch_id=batch_id)
    red_team_set = _create(owner, policy, sample_size=4, import_batch_id=batch_id)
    assert red_team_set.selection == {"import_batch": batch_id}
    assert set(red_team_set.variants.values_list("pair_id", flat=True)) == {p.pk for p in pairs}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"categories": ["injection", "sql_injection"]}, "Unknown red-team category: sql_injection"),
        ({"categories": []}, "Choose at least one category"),
        ({"sample_size": 0}, "sample size must be from 1 to 10000"),
        ({"seed": -1}, "seed must be a whole number"),
    ],
)
def test_bad_input_gets_a_clear_error_and_leaves_nothing(owner, policy, many_pairs, overrides, message):
    with pytest.raises(RedTeamError, match=message):
        _create(owner, policy, **overrides)
    assert not RedTeamSet.objects.exists() and not RedTeamVariant.objects.exists()


def test_a_pair_that_cannot_be_baited_stops_the_set_and_leaves_nothing(owner, policy, many_pairs):
    from labeling.variants.bait import REQUIREMENTS

    Member.objects.filter(external_id="m00").update(summary=" ".join(term for term, _ in REQUIREMENTS))
    with pytest.raises(RedTeamError, match=r"No hallucination_bait variant of pair m00 × j\d: the member already has"):
        _create(owner, policy, sample_size=24, categories=["hallucination_bait"])
    assert not RedTeamSet.objects.exists() and not RedTeamVariant.objects.exists()


def test_only_policy_owners_create_and_ml_engineers_read(owner, engineer, annotator, policy, many_pairs):
    for user in (engineer, annotator):
        with pytest.raises(PermissionDenied, match="Only policy owners"):
            _create(user, policy)
    assert not RedTeamSet.objects.exists()
    red_team_set = _create(owner, policy)
    assert red_team_set_get(user=engineer, set_id=red_team_set.pk) == red_team_set
    assert list(red_team_sets(user=engineer, policy=policy)) == [red_team_set]
    assert len(red_team_variant_diffs(user=engineer, red_team_set=red_team_set)) == 40
    with pytest.raises(PermissionDenied, match="policy owners and ML engineers"):
        red_team_set_get(user=annotator, set_id=red_team_set.pk)


def test_the_database_refuses_variants_that_break_their_invariant(owner, policy, many_pairs):
    """Each update breaks one invariant only, so each constraint is shown to hold on its own."""
    red_team_set = _create(owner, policy, sample_size=1)
    injected = red_team_set.variants.get(category="injection")
    noisy = red_team_set.variants.get(category="irrelevant_noise")
    for variant, broken in (
        (injected, {"expected_flag": ""}),  # an injection must expect the flag
        (noisy, {"expected_flag": "suspected_injection"}),  # nothing else may
        (noisy, {"planted_label": "no_match"}),  # only an injection plants a label
        (noisy, {"category": "protected_attribute"}),  # a counterfactual names its attribute
        (noisy, {"attribute": "age"}),  # and only a counterfactual does
        (red_team_set.variants.get(category="protected_attribute"), {"attribute": "star_sign"}),  # a known one
        (noisy, {"category": "hallucination"}),
        (noisy, {"expected_label": "anything"}),
        (noisy, {"expected_label": "any"}),  # only bait may change the label
        (noisy, {"member_lacks": ["CISSP"]}),
        (red_team_set.variants.get(category="hallucination_bait"), {"member_lacks": []}),
        (red_team_set.variants.get(category="hallucination_bait"), {"expected_label": "label_equals_clean"}),
        (noisy, {"field": ""}),
    ):
        with pytest.raises(IntegrityError), transaction.atomic():
            RedTeamVariant.objects.filter(pk=variant.pk).update(**broken)
    with pytest.raises(IntegrityError), transaction.atomic():
        RedTeamSet.objects.filter(pk=red_team_set.pk).update(sample_size=25)  # more than the pairs it drew from
    with pytest.raises(IntegrityError), transaction.atomic():
        RedTeamSet.objects.filter(pk=red_team_set.pk).update(categories=[])
    RedTeamVariant.objects.filter(pk=noisy.pk).update(style="reorder_skills")  # a valid change goes through


def test_the_command_creates_and_shows_a_set(owner, engineer, policy, many_pairs, capsys):
    call_command("redteam", "create", "--policy", "match", "--seed", "9", "--size", "2", "--categories",
                 "hallucination_bait,injection", "--user", owner.username)  # fmt: skip
    out = capsys.readouterr().out
    red_team_set = RedTeamSet.objects.get()
    assert f"Red-team set #{red_team_set.pk}: 4 variants of 2 pairs (injection, hallucination_bait), seed 9." in out
    call_command("redteam", "show", str(red_team_set.pk), "--diff", "--user", engineer.username)
    out = capsys.readouterr().out
    assert out.count("expects label_equals_clean, flag suspected_injection") == 2
    assert out.count("expects any, rationale does not credit the member with ") == 2
    assert "+++ variant" in out


def test_the_command_reports_bad_input(owner, annotator, policy, many_pairs):
    with pytest.raises(CommandError, match="Unknown red-team category: bias"):
        call_command("redteam", "create", "--policy", "match", "--seed", "1", "--size", "2", "--categories", "bias",
                     "--user", owner.username)  # fmt: skip
    with pytest.raises(CommandError, match="Only policy owners"):
        call_command("redteam", "create", "--policy", "match", "--seed", "1", "--size", "2", "--categories",
                     "injection", "--user", annotator.username)  # fmt: skip
    with pytest.raises(CommandError, match="No policy 'nope'"):
        call_command("redteam", "create", "--policy", "nope", "--seed", "1", "--size", "2", "--categories",
                     "injection", "--user", owner.username)  # fmt: skip
    with pytest.raises(CommandError, match="No red-team set #999"):
        call_command("redteam", "show", "999", "--user", owner.username)
    assert not RedTeamSet.objects.exists()


def test_the_admin_shows_sets_and_variants_read_only(owner, policy, many_pairs, make_user, client):
    red_team_set = _create(owner, policy, sample_size=2, categories=["injection"])
    client.force_login(make_user("root", is_staff=True, is_superuser=True))
    listing = client.get("/admin/labeling/redteamvariant/")
    assert listing.status_code == 200
    assert all(variant.style in listing.content.decode() for variant in red_team_set.variants.all())
    assert client.get("/admin/labeling/redteamset/add/").status_code == 403
    variant = red_team_set.variants.first()
    page = client.post(f"/admin/labeling/redteamvariant/{variant.pk}/change/", {"style": "edited"})
    assert page.status_code in (200, 403)
    variant.refresh_from_db()
    assert variant.style != "edited"
