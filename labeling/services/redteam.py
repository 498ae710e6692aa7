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
run's teacher-disagreement routing, and cannot be exported. A whole red-team run is cancelled and resumed part by
part with the runs' own cancel and resume (``red_team_run_cancel``, ``red_team_run_resume``).
"""

import contextlib
import hashlib
import random
from dataclasses import dataclass, field
from typing import BinaryIO

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from policyhub import roles
from policyhub.models import Policy, PolicyVersion

from ..imports.readers import FileFormatError, RowError, clean_object, iter_jsonl, storable
from ..imports.schemas import CUSTOM_VARIANT_SCHEMA, SCHEMAS
from ..models import (
    Job,
    LabelingRun,
    Member,
    Pair,
    RedTeamCategory,
    RedTeamExpectation,
    RedTeamRun,
    RedTeamSet,
    RedTeamVariant,
    TeacherConfig,
)
from ..selectors.redteam import clean_pair_ids
from ..teacher.messages import pair_facts
from ..variants import bait, injection, noise, protected, seeded_random
from .runs import (
    enqueue_chunks_alternating,
    labeling_run_cancel,
    labeling_run_check_judge,
    labeling_run_create,
    labeling_run_resume,
)

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
    generated = [c for c in RedTeamCategory.values if c in GENERATORS]
    if not asked:
        raise RedTeamError(f"Choose at least one category ({', '.join(generated)}).")
    if RedTeamCategory.CUSTOM in asked:
        raise RedTeamError("Custom variants are not generated: upload them as a JSONL file (a custom set).")
    unknown = sorted(set(asked) - set(generated))
    if unknown:
        raise RedTeamError(
            f"Unknown red-team categor{'y' if len(unknown) == 1 else 'ies'}: {', '.join(unknown)}. "
            f"Known: {', '.join(generated)}."
        )
    return [c for c in generated if c in asked]


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


# --- custom sets: uploaded variants ---------------------------------------------------------------------------
#: The largest custom upload, and the most variants it may hold.
CUSTOM_MAX_BYTES = 10 * 1024 * 1024
CUSTOM_MAX_VARIANTS = 2000
#: Bad lines listed at most (all of them are counted).
CUSTOM_ERROR_CAP = 200
FLAGS = {flag for flag in RedTeamVariant.Flag.values if flag}


class RedTeamUploadError(RedTeamError):
    """A custom upload with bad lines: ``errors`` (line, field, reason; the first ``CUSTOM_ERROR_CAP``) and how
    many there were. Nothing was written. ``too_large``: the file is over ``CUSTOM_MAX_BYTES``, refused unread."""

    def __init__(self, source: str, errors: list[RowError], error_count: int, *, too_large: bool = False):
        self.errors, self.error_count, self.too_large = errors, error_count, too_large
        if error_count == 1 and errors and errors[0].line == 0:
            summary = f"{source}: {errors[0].reason}; nothing was created."
        else:
            more = f" (the first {len(errors)} are listed)" if error_count > len(errors) else ""
            summary = f"{source}: {error_count} bad line{'s' if error_count != 1 else ''}{more}; nothing was created."
        super().__init__(summary)


@dataclass
class _Upload:
    line: int
    member: dict
    job: dict
    expected_label: str
    must_match: tuple[str, str] | None
    expected_flag: str
    name: str
    note: str
    pair_id: int | None = None
    errors: list[RowError] = field(default_factory=list)


def _read_line(line: int, raw: dict, labels: list[str]) -> _Upload:
    row = _Upload(line, {}, {}, raw["expected_label"], None, raw["expected_flag"], raw["name"], raw["note"])
    for side, schema in (("member", SCHEMAS["members"]), ("job", SCHEMAS["jobs"])):
        result = clean_object(schema, line, raw[side], side)
        if isinstance(result, list):
            row.errors += result
        else:
            setattr(row, side, result)
    if raw["must_match"] is not None:
        result = clean_object(SCHEMAS["pairs"], line, raw["must_match"], "must_match")
        if isinstance(result, list):
            row.errors += result
        else:
            row.must_match = (result["member_id"], result["job_id"])
    has_match = raw["must_match"] is not None
    if row.expected_label and has_match:
        row.errors.append(RowError(line, "expected_label", "give expected_label or must_match, not both"))
    elif not row.expected_label and not has_match:
        row.errors.append(RowError(
            line, "expected_label", f"missing value: give expected_label (one of {', '.join(labels)}) or must_match "
            '({"member_id": …, "job_id": …}, a pair whose clean label the variant must equal)',
        ))  # fmt: skip
    elif row.expected_label and row.expected_label not in labels:
        row.errors.append(RowError(
            line, "expected_label", f"{row.expected_label!r} is not a label of this policy; one of {', '.join(labels)}"
        ))  # fmt: skip
    if row.expected_flag and row.expected_flag not in FLAGS:
        row.errors.append(RowError(
            line, "expected_flag", f"{row.expected_flag!r} is not a flag; the one flag is {', '.join(sorted(FLAGS))}"
        ))  # fmt: skip
    return row


def _read_upload(stream: BinaryIO, labels: list[str]) -> tuple[list[_Upload], list[RowError]]:
    rows, errors = [], []
    max_line = getattr(settings, "IMPORT_MAX_LINE_BYTES", 1 << 20)
    names = CUSTOM_VARIANT_SCHEMA.names
    for item in iter_jsonl(stream, CUSTOM_VARIANT_SCHEMA, max_line):
        if isinstance(item, RowError):
            errors.append(item)
            continue
        line, values = item
        if len(rows) >= CUSTOM_MAX_VARIANTS:
            raise FileFormatError([RowError(line, "row", f"more than {CUSTOM_MAX_VARIANTS:,} variants in one file")])
        row = _read_line(line, dict(zip(names, values, strict=True)), labels)
        errors += row.errors
        rows.append(row)
    if not rows and not errors:
        raise FileFormatError([RowError(0, "file", "the file holds no variants (one JSON object a line)")])
    return rows, errors


def _resolve_matches(rows: list[_Upload]) -> list[RowError]:
    """Set each must_match row's pair, or say why there is none; one custom variant per pair."""
    wanted = {row.must_match for row in rows if row.must_match}
    found: dict[tuple[str, str], int] = {}
    members, jobs = {m for m, _ in wanted}, {j for _, j in wanted}
    if wanted:
        query = Pair.objects.filter(member__external_id__in=members, job__external_id__in=jobs)
        for pair_id, member, job in query.values_list("id", "member__external_id", "job__external_id"):
            found[(member, job)] = pair_id
        known_members = set(Member.objects.filter(external_id__in=members).values_list("external_id", flat=True))
        known_jobs = set(Job.objects.filter(external_id__in=jobs).values_list("external_id", flat=True))
    errors, first_line = [], {}
    for row in rows:
        if not row.must_match:
            continue
        member, job = row.must_match
        if (member, job) in found:
            row.pair_id = found[(member, job)]
            if row.pair_id in first_line:
                errors.append(RowError(row.line, "must_match", f"the same pair as line {first_line[row.pair_id]}: "
                                       "one custom variant per pair in a set"))  # fmt: skip
            first_line.setdefault(row.pair_id, row.line)
        elif member not in known_members:
            errors.append(RowError(row.line, "must_match.member_id", f"unknown member id {member!r}"))
        elif job not in known_jobs:
            errors.append(RowError(row.line, "must_match.job_id", f"unknown job id {job!r}"))
        else:
            errors.append(RowError(row.line, "must_match", f"no pair of member {member!r} and job {job!r}"))
    return errors


def _key_pairs(rows: list[_Upload]) -> list[RowError]:
    """Give each expected-label row a key pair: the first pairs in (member id, job id) order that no must_match
    row names, one each (a run's candidates are keyed by pair; the key is never compared or shown)."""
    taken = {row.pair_id for row in rows if row.pair_id}
    keyless = [row for row in rows if not row.must_match]
    if not keyless:
        return []
    free = (
        Pair.objects.exclude(id__in=taken)
        .order_by("member__external_id", "job__external_id")
        .values_list("id", flat=True)[: len(keyless)]
    )
    free = list(free)
    for row, pair_id in zip(keyless, free, strict=False):
        row.pair_id = pair_id
    if len(free) < len(keyless):
        row = keyless[len(free)]
        reason = (
            f"{len(keyless)} expected-label variants need as many pairs to be keyed by in a run (one each), and "
            f"only {len(free)} are free: import pairs first"
        )
        return [RowError(row.line, "expected_label", reason)]
    return []


def _sorted_errors(errors: list[RowError]) -> list[RowError]:
    return sorted(errors, key=lambda e: (e.line, e.field))[:CUSTOM_ERROR_CAP]


def red_team_custom_set_create(*, user, policy: Policy, name: str, stream: BinaryIO, source: str) -> RedTeamSet:
    """A set of uploaded ``custom`` variants (JSONL, one a line: ``schemas.CUSTOM_VARIANT_SCHEMA``), all or nothing:
    every bad line is reported with its line and field (:class:`RedTeamUploadError`) and nothing is written. The
    member, job and pair tables are only read: the variants keep their own facts."""
    roles.require_role(user, roles.POLICY_OWNER, message=OWNERS_ONLY)
    source = storable(source or "upload.jsonl")[:200]
    labels = _label_keys(policy)
    stream.seek(0, 2)
    size = stream.tell()
    stream.seek(0)
    if size > CUSTOM_MAX_BYTES:
        reason = f"the file is {size:,} bytes; a custom red-team upload holds at most {CUSTOM_MAX_BYTES:,}"
        raise RedTeamUploadError(source, [RowError(0, "file", reason)], 1, too_large=True)
    digest = hashlib.sha256()
    for chunk in iter(lambda: stream.read(1 << 20), b""):
        digest.update(chunk)
    stream.seek(0)
    try:
        rows, errors = _read_upload(stream, labels)
    except FileFormatError as error:
        raise RedTeamUploadError(source, error.errors, len(error.errors)) from None
    errors += _resolve_matches([row for row in rows if not row.errors])
    if not errors:
        errors += _key_pairs(rows)
    if errors:
        raise RedTeamUploadError(source, _sorted_errors(errors), len(errors))
    red_team_set = RedTeamSet(
        policy=policy, name=storable((name or "").strip())[:200] or source, seed=0, sample_size=len(rows),
        categories=[RedTeamCategory.CUSTOM], selection={"custom": source, "sha256": digest.hexdigest()},
        pairs_available=Pair.objects.count(), labels=labels, created_by=user,
    )  # fmt: skip
    red_team_set.full_clean()
    variants = [
        RedTeamVariant(
            index=index,
            pair_id=row.pair_id,
            category=RedTeamCategory.CUSTOM,
            field="upload",
            style=row.name or f"line {row.line}",
            member=row.member,
            job=row.job,
            expected_label=RedTeamExpectation.LABEL_EQUALS_CLEAN if row.must_match else RedTeamExpectation.LABEL_EQUALS,
            required_label="" if row.must_match else row.expected_label,
            expected_flag=row.expected_flag,
            note=row.note,
        )  # fmt: skip
        for index, row in enumerate(rows)
    ]
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
    *,
    user,
    red_team_set: RedTeamSet,
    version: PolicyVersion,
    config: TeacherConfig,
    idempotency_key: str = "",
    judge: TeacherConfig | None = None,
) -> tuple[RedTeamRun, list[LabelingRun]]:
    """The red-team run and its parts (the clean originals, then one per category), inside the caller's
    transaction with ``version`` locked, chunks not queued: the caller queues them (alone, or alternating with a
    draft preview's runs). Checks the version and config like :func:`red_team_run_start`. ``judge``: every part
    is judged by it (the runs' ``judge_verdict`` check: a failed verdict flags the variant's answer)."""
    from .gold import check_teacher_config  # gold builds on runs, like this module

    _runnable_version(red_team_set, version)
    try:
        check_teacher_config(config, version)
        labeling_run_check_judge(judge=judge, mode=LabelingRun.Mode.ONLINE)
    except ValidationError as error:
        raise RedTeamError(error.messages) from None
    pair_ids = clean_pair_ids(red_team_set)  # the originals variants are compared with (none for expected labels)
    red_team_run = RedTeamRun.objects.create(
        red_team_set=red_team_set, policy_version=version, teacher_config=config,
        draft_revision=version.revision if version.is_draft else None, content_hash=version.content_hash,
        judge_config=judge, idempotency_key=idempotency_key, created_by=user,
    )  # fmt: skip
    parts = []
    for category in ["", *red_team_set.categories] if pair_ids else red_team_set.categories:
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
                judge=judge,
            )  # fmt: skip
        )
    return red_team_run, parts


def red_team_run_start(
    *,
    user,
    red_team_set: RedTeamSet,
    version: PolicyVersion,
    config: TeacherConfig,
    idempotency_key: str = "",
    judge: TeacherConfig | None = None,
) -> RedTeamRun:
    """Label the set's clean originals and every category's variants under ``version`` (published, or the draft
    as saved now) with ``config``: one ``purpose=red_team`` run per part, chunked on the workers in alternation.
    The clean originals go through the same cache as any run, so pairs a labeling run of this version and config
    asked already cost nothing. ``judge``: a second LLM config judging every answer (online, like every red-team
    run). The same ``idempotency_key`` from the same user returns the same red-team run."""
    roles.require_role(user, roles.POLICY_OWNER, message=RUN_OWNERS_ONLY)
    key = (idempotency_key or "")[:200]
    if key and (existing := RedTeamRun.objects.filter(created_by=user, idempotency_key=key).first()):
        return existing
    try:
        with transaction.atomic():
            version = PolicyVersion.objects.select_for_update().select_related("policy").get(pk=version.pk)
            red_team_run, parts = red_team_run_create(
                user=user, red_team_set=red_team_set, version=version, config=config, idempotency_key=key, judge=judge
            )
            enqueue_chunks_alternating(parts)
    except IntegrityError:
        if key and (existing := RedTeamRun.objects.filter(created_by=user, idempotency_key=key).first()):
            return existing
        raise
    return red_team_run


# --- cancel and resume a whole red-team run ------------------------------------------------------------------
ACTIONS_OWNERS_ONLY = "Only policy owners can cancel or resume red-team runs."
UNFINISHED = (LabelingRun.Status.QUEUED, LabelingRun.Status.RUNNING)
RESUMABLE = (LabelingRun.Status.CANCELLED, LabelingRun.Status.FAILED)


def red_team_run_cancel(*, user, run: RedTeamRun) -> RedTeamRun:
    """Cancel every unfinished part with the runs' own cancel (queued chunks never start, running ones keep what
    they got); finished parts stay as they are, so the run reads ``cancelled`` until it is resumed."""
    roles.require_role(user, roles.POLICY_OWNER, message=ACTIONS_OWNERS_ONLY)
    parts = list(run.runs.filter(status__in=UNFINISHED).order_by("id"))
    if not parts:
        raise RedTeamError(f"Red-team run #{run.pk} is {run.status}: no part is queued or running, nothing to cancel.")
    for part in parts:
        with contextlib.suppress(ValidationError):  # it finished (or failed) meanwhile: nothing to cancel there
            labeling_run_cancel(run=part, user=user)
    return run


def red_team_run_resume(*, user, run: RedTeamRun) -> RedTeamRun:
    """Resume every cancelled or failed part with the runs' own resume: their unfinished chunks are queued again,
    stored answers are kept (and cached answers cost nothing)."""
    roles.require_role(user, roles.POLICY_OWNER, message=ACTIONS_OWNERS_ONLY)
    parts = list(run.runs.filter(status__in=RESUMABLE).order_by("id"))
    if not parts:
        raise RedTeamError(
            f"Red-team run #{run.pk} is {run.status}: no part was cancelled or failed, nothing to resume."
        )
    for part in parts:
        labeling_run_resume(run=part, user=user)
    return run
