"""``manage.py redteam create --policy SLUG --seed S --size N --categories injection,protected_attribute
--user NAME [--import-batch ID] [--name TEXT]``, ``manage.py redteam create --policy SLUG --custom FILE.jsonl
--user NAME [--name TEXT]`` (uploaded custom variants; every bad line is printed, nothing is created),
``manage.py redteam show ID --user NAME [--diff]`` and
``manage.py redteam run --policy SLUG --version N|draft --teacher NAME --user OWNER [--set ID] [--wait]
[--poll SECONDS]``: prints the plan, starts the run and, with ``--wait``, polls until it ends and prints the
report; the exit code is 1 when the run failed or was cancelled (and, later, when a quality gate fails:
:meth:`Command.gate_exit_code`)."""

import re
import time
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError

from labeling.models import RedTeamRun, RedTeamSet, RunStatus, TeacherConfig
from labeling.selectors.gates import red_team_run_gate_results
from labeling.selectors.redteam import red_team_plan, red_team_set_get, red_team_variant_diffs
from labeling.selectors.redteam_report import red_team_report
from labeling.services.redteam import (
    RedTeamUploadError,
    red_team_custom_set_create,
    red_team_run_start,
    red_team_set_create,
)
from policyhub.models import Policy, PolicyVersion


class Command(BaseCommand):
    help = "Create a red-team set of a policy (seeded variants of real pairs) or show one."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="Sample pairs and generate their variants.")
        create.add_argument("--policy", required=True, help="Policy slug.")
        create.add_argument("--seed", type=int)
        create.add_argument("--size", type=int, help="N: how many pairs to sample.")
        create.add_argument("--categories", help="Comma-separated, e.g. injection,irrelevant_noise.")
        create.add_argument(
            "--custom", metavar="FILE", help="Upload custom variants (JSONL) instead of sampling and generating."
        )
        create.add_argument("--import-batch", type=int, help="Sample only the pairs of this pairs import.")
        create.add_argument("--name", default="")
        create.add_argument("--user", required=True, help="A policy owner's username (recorded as the creator).")
        show = sub.add_parser("show", help="Print a set's variants and their invariants.")
        show.add_argument("set_id", type=int)
        show.add_argument("--user", required=True, help="A policy owner's or ML engineer's username.")
        show.add_argument("--diff", action="store_true", help="Print each variant's diff against its original.")
        run = sub.add_parser("run", help="Label a set's originals and variants under a version and print the report.")
        run.add_argument("--policy", required=True, help="Policy slug.")
        run.add_argument("--version", required=True, help="A published version number, or 'draft'.")
        run.add_argument("--teacher", required=True, help="Teacher config name.")
        run.add_argument("--set", type=int, help="Red-team set id (default: the policy's newest set).")
        run.add_argument("--judge", help="A second (LLM) teacher config's name that judges every answer.")
        run.add_argument("--user", required=True, help="A policy owner's username (recorded as the starter).")
        run.add_argument("--wait", action="store_true", help="Poll until the run ends, then print the report.")
        run.add_argument("--poll", type=float, default=2.0, help="Seconds between polls with --wait.")

    def handle(self, *args, **opts):
        user = get_user_model().objects.filter(username=opts["user"]).first()
        if user is None:
            raise CommandError(f"No user {opts['user']!r}.")
        try:
            if opts["action"] == "create":
                return self._create(user, opts)
            if opts["action"] == "run":
                return self._run(user, opts)
            return self._show(user, opts)
        except (ValidationError, PermissionDenied) as error:
            raise CommandError(" ".join(getattr(error, "messages", [str(error)]))) from error

    def _create(self, user, opts):
        policy = Policy.objects.filter(slug=opts["policy"]).first()
        if policy is None:
            raise CommandError(f"No policy {opts['policy']!r}.")
        if opts["custom"]:
            return self._create_custom(user, policy, opts)
        missing = [f"--{name}" for name in ("seed", "size", "categories") if opts[name] is None]
        if missing:
            raise CommandError(f"Give {', '.join(missing)} (or --custom FILE to upload variants).")
        red_team_set = red_team_set_create(
            user=user, policy=policy, name=opts["name"], seed=opts["seed"], sample_size=opts["size"],
            categories=opts["categories"].split(","), import_batch_id=opts["import_batch"],
        )  # fmt: skip
        self.stdout.write(
            f"Red-team set #{red_team_set.pk}: {red_team_set.variants.count()} variants of {red_team_set.sample_size} "
            f"pairs ({', '.join(red_team_set.categories)}), seed {red_team_set.seed}."
        )

    def _create_custom(self, user, policy, opts):
        if any(opts[name] is not None for name in ("seed", "size", "categories", "import_batch")):
            raise CommandError(
                "--custom FILE uploads variants: it takes no --seed, --size, --categories or --import-batch."
            )
        path = Path(opts["custom"])
        try:
            stream = path.open("rb")
        except OSError as error:
            raise CommandError(f"Cannot read {path}: {error.strerror}.") from error
        with stream:
            try:
                red_team_set = red_team_custom_set_create(
                    user=user, policy=policy, name=opts["name"], stream=stream, source=path.name
                )
            except RedTeamUploadError as error:
                lines = [error.message, *(f"line {e.line}: {e.field}: {e.reason}" for e in error.errors)]
                raise CommandError("\n".join(lines)) from error
        self.stdout.write(
            f"Red-team set #{red_team_set.pk}: {red_team_set.variants.count()} custom variants from {path.name}."
        )

    def _show(self, user, opts):
        try:
            red_team_set = red_team_set_get(user=user, set_id=opts["set_id"])
        except RedTeamSet.DoesNotExist as error:
            raise CommandError(f"No red-team set #{opts['set_id']}.") from error
        self.stdout.write(str(red_team_set))
        for item in red_team_variant_diffs(user=user, red_team_set=red_team_set):
            v = item.variant
            label = f"label {v.required_label}" if v.required_label else v.expected_label
            expects = [label] + ([f"flag {v.expected_flag}"] if v.expected_flag else [])
            if v.rationale_must_not_mention:
                expects.append(f"rationale omits {v.attribute}")
            if v.member_lacks:
                expects.append(f"rationale does not credit the member with {', '.join(v.member_lacks)}")
            if item.clean_member:
                pair = f"{item.clean_member['member_id']} × {item.clean_job['job_id']}"
            else:  # an uploaded variant with an expected label: no original, its own ids
                pair = f"{v.member.get('member_id', '')} × {v.job.get('job_id', '')} (no original)"
            self.stdout.write(f"#{v.index} {v.category} {pair} {v.field} [{v.style}]: expects {', '.join(expects)}")
            for change in item.changes if opts["diff"] else ():
                self.stdout.write(change.diff)

    # --- run ----------------------------------------------------------------------------------------------------
    def _run(self, user, opts):
        version, config, red_team_set = self._run_targets(opts)
        judge = None
        if opts.get("judge") and (judge := TeacherConfig.objects.filter(name=opts["judge"]).first()) is None:
            raise CommandError(f"No teacher config {opts['judge']!r} to judge with.")
        plan = red_team_plan(user=user, red_team_set=red_team_set, version=version, config=config, judge=judge)
        self.stdout.write(f"Plan: {plan.requests} teacher requests, ≈ {plan.estimated_input_tokens} input + "
                          f"{plan.estimated_output_tokens} output tokens, ≈ ${plan.estimated_cost}.")  # fmt: skip
        for name, part in plan.parts:
            self.stdout.write(f"  {name}: {part.pairs} pairs, {part.requests} requests, {part.cached_share:.0%} "
                              f"cached, ≈ ${part.estimated_cost}")  # fmt: skip
        if judge is not None:
            self.stdout.write(f"  judge {judge.name}: {plan.judge_requests} requests, ≈ ${plan.judge_estimated_cost}")
        run = red_team_run_start(user=user, red_team_set=red_team_set, version=version, config=config, judge=judge)
        self.stdout.write(f"Red-team run #{run.pk} started: set #{red_team_set.pk} under {version} with {config.name}.")
        if not opts["wait"]:
            return
        while run.status in (RunStatus.QUEUED, RunStatus.RUNNING):
            report = red_team_report(run=run, examples=0)
            self.stdout.write(f"  {report.status}: {report.samples_done} of {report.samples_total} samples")
            time.sleep(opts["poll"])
            run = RedTeamRun.objects.get(pk=run.pk)
        report = red_team_report(run=run)
        self._print_report(report)
        if report.status != RunStatus.SUCCEEDED:
            errors = "; ".join(f"{p.red_team_category or 'clean'}: {p.error}" for p in report.parts if p.error)
            raise CommandError(f"Red-team run #{run.pk} {report.status}" + (f": {errors}" if errors else "."))
        if code := self.gate_exit_code(run):
            raise CommandError(f"Red-team run #{run.pk} fails a quality gate.", returncode=code)

    def gate_exit_code(self, run: RedTeamRun) -> int:
        """2 when the run's figures fail one of the policy's red-team quality gates (1 is a failed run)."""
        results = red_team_run_gate_results(run=run)
        for result in results:
            self.stdout.write(f"Gate {result.name}: {result.status}{' (blocks)' if result.blocking else ''}, "
                              f"{result.detail}")  # fmt: skip
        return 2 if any(result.blocking for result in results) else 0

    def _run_targets(self, opts):
        policy = Policy.objects.filter(slug=opts["policy"]).first()
        if policy is None:
            raise CommandError(f"No policy {opts['policy']!r}.")
        if opts["version"] == "draft":
            version = policy.versions.filter(status=PolicyVersion.Status.DRAFT).first()
            if version is None:
                raise CommandError(f"Policy {policy.slug!r} has no draft.")
        else:
            if not re.fullmatch(r"[0-9]{1,9}", opts["version"]):
                raise CommandError(f"--version is a version number or 'draft', not {opts['version']!r}.")
            version = policy.versions.filter(number=int(opts["version"])).first()
            if version is None:
                raise CommandError(f"No version {opts['version']} of policy {policy.slug!r}.")
        config = TeacherConfig.objects.filter(name=opts["teacher"]).first()
        if config is None:
            raise CommandError(f"No teacher config {opts['teacher']!r}.")
        sets = RedTeamSet.objects.filter(policy=policy)
        red_team_set = sets.filter(pk=opts["set"]).first() if opts["set"] else sets.order_by("-created_at").first()
        if red_team_set is None:
            raise CommandError(
                f"No red-team set #{opts['set']} of {policy.slug!r}." if opts["set"]
                else f"Policy {policy.slug!r} has no red-team set: create one with `redteam create` first."
            )  # fmt: skip
        return version, config, red_team_set

    def _print_report(self, report):
        self.stdout.write(f"Red-team run #{report.run.pk}: {report.status}, {report.variants} variants "
                          f"({report.undecided} undecided), cost ${report.cost:.4f}.")  # fmt: skip
        for category, figures in report.categories.items():
            rate = figures.attack_success.rate
            self.stdout.write(
                f"{category}: attack success {figures.attack_success.count}/{figures.attack_success.total}"
                f" ({'–' if rate is None else f'{rate:.0%}'}), flagged {figures.flagged.count}, "
                f"tone failures {figures.tone_failures.count}"
            )
            for example in figures.examples:
                if example.attack_succeeded:
                    v = example.variant
                    self.stdout.write(f"  #{v.index} {v.pair.member.external_id} × {v.pair.job.external_id} "
                                      f"[{v.style}]: {'; '.join(example.why)}")  # fmt: skip
        flips = ", ".join(f"{a} {r.count}/{r.total}" for a, r in report.flip_rate_by_attribute.items())
        self.stdout.write(f"Counterfactual flips: {report.flip_rate.count}/{report.flip_rate.total}"
                          + (f" ({flips})" if flips else ""))  # fmt: skip
