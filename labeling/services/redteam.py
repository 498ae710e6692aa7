"""Red-team sets: a policy owner draws N real pairs with a seed and gets, for each pair and category, a variant and
the invariant it tests (``RedTeamVariant``). Generation is deterministic: the sample is drawn from the pairs in
(member id, job id) order with ``random.Random(seed)``, and each variant from a generator seeded by (seed, member
id, job id, category), so the same seed and the same pairs give byte-identical variants in any database.

Variants are rows of their own holding the edited facts; the member, job and pair tables are never written, so
nothing of a red-team set reaches a labeling run's selection, the review queue or an export.

Red-team runs (``red_team_run_start``) label a set under a version: the clean originals and each category's
variants are parts of their own (``purpose=red_team`` runs of the one run engine; for a category's part the engine
reads the variant's facts instead of the pair's, see ``labeling.pipeline.context``). Like every run whose purpose
is not ``labeling``, they never queue anything for review, approve nothing, never count in agreement or another
run's teacher-disagreement routing, and cannot be exported.
"""

import random

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from policyhub import roles
from policyhub.models import Policy, PolicyVersion

from ..models import (
    LabelingRun,
    Pair,
    RedTeamCategory,
    RedTeamExpectation,
    RedTeamRun,
    RedTeamSet,
    RedTeamVariant,
    TeacherConfig,
)
from ..teacher.messages import pair_facts
from ..variants import bait, injection, noise, protected, seeded_random
from .runs import enqueue_chunks_alternating, labeling_run_create

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


# --- red-team runs -------------------------------------------------------------------------------------------
#: Pairs per chunk of a red-team part: small, so every part shows progress early (chunks alternate).
RED_TEAM_CHUNK_PAIRS = 25
RUN_OWNERS_ONLY = "Only policy owners can start red-team runs."


def _runnable_version(red_team_set: RedTeamSet, version: PolicyVersion) -> PolicyVersion:
    if version.policy_id != red_team_set.policy_id:
        raise RedTeamError(
            f"Red-team set #{red_team_set.pk} belongs to {red_team_set.policy.slug}; v{version.number} is a version "
            f"of {version.policy.slug}."
        )
    if version.status == PolicyVersion.Status.RETIRED:
        raise RedTeamError(f"v{version.number} is retired: red-team a published version or the draft.")
    return version


def red_team_run_create(
    *, user, red_team_set: RedTeamSet, version: PolicyVersion, config: TeacherConfig, idempotency_key: str = ""
) -> tuple[RedTeamRun, list[LabelingRun]]:
    """The red-team run and its parts (the clean originals, then one per category), inside the caller's
    transaction with ``version`` locked, chunks not queued: the caller queues them (alone, or alternating with a
    draft preview's runs). Checks the version and config like :func:`red_team_run_start`."""
    from .gold import check_teacher_config  # gold builds on runs, like this module

    _runnable_version(red_team_set, version)
    try:
        check_teacher_config(config, version)
    except ValidationError as error:
        raise RedTeamError(error.messages) from None
    pair_ids = sorted(set(red_team_set.variants.values_list("pair_id", flat=True)))
    red_team_run = RedTeamRun.objects.create(
        red_team_set=red_team_set, policy_version=version, teacher_config=config,
        draft_revision=version.revision if version.is_draft else None, content_hash=version.content_hash,
        idempotency_key=idempotency_key, created_by=user,
    )  # fmt: skip
    parts = []
    for category in ["", *red_team_set.categories]:
        ids = pair_ids if not category else sorted(
            set(red_team_set.variants.filter(category=category).values_list("pair_id", flat=True))
        )  # fmt: skip
        parts.append(
            labeling_run_create(
                version=version,
                config=config,
                selection={"pair_ids": ids},
                user=user,
                purpose=LabelingRun.Purpose.RED_TEAM,
                chunk_size=RED_TEAM_CHUNK_PAIRS,
                enqueue_chunks=False,
                red_team_run=red_team_run,
                red_team_category=category,
            )  # fmt: skip
        )
    return red_team_run, parts


def red_team_run_start(
    *, user, red_team_set: RedTeamSet, version: PolicyVersion, config: TeacherConfig, idempotency_key: str = ""
) -> RedTeamRun:
    """Label the set's clean originals and every category's variants under ``version`` (published, or the draft
    as saved now) with ``config``: one ``purpose=red_team`` run per part, chunked on the workers in alternation.
    The clean originals go through the same cache as any run, so pairs a labeling run of this version and config
    asked already cost nothing. The same ``idempotency_key`` from the same user returns the same red-team run."""
    roles.require_role(user, roles.POLICY_OWNER, message=RUN_OWNERS_ONLY)
    key = (idempotency_key or "")[:200]
    if key and (existing := RedTeamRun.objects.filter(created_by=user, idempotency_key=key).first()):
        return existing
    try:
        with transaction.atomic():
            version = PolicyVersion.objects.select_for_update().select_related("policy").get(pk=version.pk)
            red_team_run, parts = red_team_run_create(
                user=user, red_team_set=red_team_set, version=version, config=config, idempotency_key=key
            )
            enqueue_chunks_alternating(parts)
    except IntegrityError:
        if key and (existing := RedTeamRun.objects.filter(created_by=user, idempotency_key=key).first()):
            return existing
        raise
    return red_team_run
