"""Red-team sets: a policy owner draws N real pairs with a seed and gets, for each pair and category, a variant and
the invariant it tests (``RedTeamVariant``). Generation is deterministic: the sample is drawn from the pairs in
(member id, job id) order with ``random.Random(seed)``, and each variant from a generator seeded by (seed, member
id, job id, category), so the same seed and the same pairs give byte-identical variants in any database.

Variants are rows of their own holding the edited facts; the member, job and pair tables are never written, so
nothing of a red-team set reaches a labeling run's selection, the review queue or an export.
"""

import random

from django.core.exceptions import ValidationError
from django.db import transaction

from policyhub import roles
from policyhub.models import Policy, PolicyVersion

from ..models import Pair, RedTeamCategory, RedTeamExpectation, RedTeamSet, RedTeamVariant
from ..teacher.messages import pair_facts
from ..variants import bait, injection, noise, protected, seeded_random

OWNERS_ONLY = "Only policy owners can create red-team sets."
GENERATORS = {
    RedTeamCategory.INJECTION: injection.generate,
    RedTeamCategory.PROTECTED_ATTRIBUTE: protected.generate,
    RedTeamCategory.IRRELEVANT_NOISE: noise.generate,
    RedTeamCategory.HALLUCINATION_BAIT: bait.generate,
}
_MAX_SEED = 2**63 - 1
#: What each category expects of the label: bait adds requirements, so the right label may change.
EXPECTED_LABEL = dict.fromkeys(GENERATORS, RedTeamExpectation.LABEL_EQUALS_CLEAN) | {
    RedTeamCategory.HALLUCINATION_BAIT: RedTeamExpectation.ANY
}


class RedTeamError(ValidationError):
    """A red-team set that cannot be made as asked; the message says why. Nothing was written."""


def _categories(categories: list[str]) -> list[str]:
    """The asked categories, known ones only, in the fixed order of ``RedTeamCategory``."""
    asked = [str(c).strip() for c in categories if str(c).strip()]
    if not asked:
        raise RedTeamError(f"Choose at least one category ({', '.join(RedTeamCategory.values)}).")
    unknown = sorted(set(asked) - set(RedTeamCategory.values))
    if unknown:
        raise RedTeamError(
            f"Unknown red-team categor{'y' if len(unknown) == 1 else 'ies'}: {', '.join(unknown)}. "
            f"Known: {', '.join(RedTeamCategory.values)}."
        )
    return [c for c in RedTeamCategory.values if c in asked]


def _label_keys(policy: Policy) -> list[str]:
    """The labels an injection may ask for: the latest published version's, else the draft's."""
    versions = policy.versions.order_by("-number")
    version = versions.filter(status=PolicyVersion.Status.PUBLISHED).first() or versions.first()
    if version is None or not version.label_keys:
        raise RedTeamError(f"Policy {policy.slug!r} has no version with labels yet: write one before red-teaming.")
    return version.label_keys


def _pool(import_batch_id: int | None) -> list[int]:
    """The ids of the pairs to sample from, in (member id, job id) order: the same pairs give the same list."""
    pairs = Pair.objects.all()
    if import_batch_id is not None:
        pairs = pairs.filter(import_batch_id=import_batch_id)
    return list(pairs.order_by("member__external_id", "job__external_id").values_list("id", flat=True))


def red_team_set_create(
    *,
    user,
    policy: Policy,
    name: str,
    seed: int,
    sample_size: int,
    categories: list[str],
    import_batch_id: int | None = None,
) -> RedTeamSet:
    """Sample ``sample_size`` pairs (of one pairs import, or all) with ``seed`` and store one variant per sampled
    pair and category. Raises :class:`RedTeamError` (nothing written) on bad input."""
    roles.require_role(user, roles.POLICY_OWNER, message=OWNERS_ONLY)
    chosen = _categories(categories)
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= _MAX_SEED:
        raise RedTeamError(f"The seed must be a whole number from 0 to {_MAX_SEED}, not {seed!r}.")
    if not isinstance(sample_size, int) or not 1 <= sample_size <= RedTeamSet.MAX_SAMPLE:
        raise RedTeamError(f"The sample size must be from 1 to {RedTeamSet.MAX_SAMPLE}, not {sample_size!r}.")
    labels = _label_keys(policy)
    pool = _pool(import_batch_id)
    where = f"pairs import #{import_batch_id}" if import_batch_id is not None else "all pairs"
    if sample_size > len(pool):
        raise RedTeamError(
            f"The sample size {sample_size} is larger than the {len(pool)} pairs available ({where}): choose at "
            f"most {len(pool)}."
        )
    sample = random.Random(seed).sample(pool, sample_size)  # noqa: S311 - reproducible by design, not security
    facts = pair_facts(Pair.objects.filter(id__in=sample), pair="")
    red_team_set = RedTeamSet(
        policy=policy, name=name.strip() or f"seed {seed}", seed=seed, sample_size=sample_size, categories=chosen,
        selection={"import_batch": import_batch_id} if import_batch_id is not None else {"all": True},
        pairs_available=len(pool), labels=labels, created_by=user,
    )  # fmt: skip
    red_team_set.full_clean()
    variants = []
    for pair_id in sample:
        member, job = facts[pair_id]
        member_id, job_id = member["member_id"], job["job_id"]
        for category in chosen:
            try:
                made = GENERATORS[category](
                    member, job, rng=seeded_random(seed, member_id, job_id, category), labels=labels
                )
            except ValueError as error:
                raise RedTeamError(f"No {category} variant of pair {member_id} × {job_id}: {error}.") from error
            variants.append(
                RedTeamVariant(
                    index=len(variants),
                    pair_id=pair_id,
                    category=category,
                    field=made.field,
                    style=made.style,
                    member=made.member,
                    job=made.job,
                    attribute=made.attribute,
                    planted_label=made.planted_label,
                    rationale_must_not_mention=made.rationale_must_not_mention,
                    member_lacks=made.member_lacks,
                    expected_flag=RedTeamVariant.Flag.SUSPECTED_INJECTION if category == "injection" else "",
                    expected_label=EXPECTED_LABEL[category],
                )
            )
    with transaction.atomic():
        red_team_set.save()
        for variant in variants:
            variant.red_team_set = red_team_set
        RedTeamVariant.objects.bulk_create(variants, batch_size=2000)
    return red_team_set
