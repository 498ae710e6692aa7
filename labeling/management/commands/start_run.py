"""``manage.py start_run --policy member-job-match --version 1 --teacher baseline [--judge NAME] [--plan] [--batch]
[--wait]``."""

import json
import time

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from labeling import selectors, services
from labeling.models import TeacherConfig
from labeling.selectors.planning import run_plan
from policyhub.models import PolicyVersion


class Command(BaseCommand):
    help = "Plan or start a labeling run (a published policy version × a teacher config × pairs)."

    def create_parser(self, prog_name, subcommand, **kwargs):
        # our --version (the policy version) replaces Django's --version (the Django version)
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve", **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("--policy", required=True, help="Policy slug.")
        parser.add_argument("--version", required=True, type=int, help="Published version number.")
        parser.add_argument("--teacher", required=True, help="Teacher config name.")
        parser.add_argument("--judge", help="An LLM teacher config that judges every answer (judge_verdict).")
        parser.add_argument("--import-batch", type=int, help="Only the pairs of this pairs import.")
        parser.add_argument("--limit", type=int, help="Only the first N pairs.")
        parser.add_argument("--thresholds", default="{}", help='JSON, e.g. {"min_confidence": 0.8}.')
        parser.add_argument("--checks", default="{}", help='JSON, e.g. {"require_rule_citation": false}.')
        parser.add_argument("--chunk-size", type=int, default=500)
        parser.add_argument("--user", help="Username recorded as the starter.")
        parser.add_argument("--plan", action="store_true", help="Only show the plan: one prompt and the estimate.")
        parser.add_argument("--wait", action="store_true", help="Print progress until the run ends.")
        parser.add_argument("--batch", action="store_true", help="Use the OpenAI Batch API (offline, within 24 h).")

    def handle(self, *args, **opts):
        version = PolicyVersion.objects.filter(policy__slug=opts["policy"], number=opts["version"]).first()
        if version is None:
            raise CommandError(f"No version {opts['version']} of policy {opts['policy']!r}.")
        config = TeacherConfig.objects.filter(name=opts["teacher"]).first()
        if config is None:
            raise CommandError(f"No teacher config {opts['teacher']!r}.")
        judge = TeacherConfig.objects.filter(name=opts["judge"]).first() if opts["judge"] else None
        if opts["judge"] and judge is None:
            raise CommandError(f"No teacher config {opts['judge']!r} to judge with.")
        selection: dict = {"import_batch": opts["import_batch"]} if opts["import_batch"] else {"all": True}
        if opts["limit"]:
            selection["limit"] = opts["limit"]
        user = get_user_model().objects.filter(username=opts["user"]).first() if opts["user"] else None
        try:
            thresholds, checks = json.loads(opts["thresholds"]), json.loads(opts["checks"])
            mode = "batch" if opts["batch"] else "online"
            if opts["plan"]:
                services.labeling_run_check_judge(judge=judge, mode=mode)
                return self._print_plan(
                    run_plan(version=version, config=config, selection=selection, mode=mode, judge=judge)
                )
            run = services.labeling_run_create(
                version=version, config=config, selection=selection, thresholds=thresholds, checks=checks,
                chunk_size=opts["chunk_size"], user=user, mode=mode, judge=judge,
            )  # fmt: skip
        except (ValidationError, json.JSONDecodeError) as error:
            raise CommandError(" ".join(getattr(error, "messages", [str(error)]))) from error
        self.stdout.write(f"Run #{run.pk} started on {run.pairs_total} pairs ({run.samples_total} samples).")
        while opts["wait"]:
            run.refresh_from_db()
            self.stdout.write(
                f"  {run.status}: {run.samples_done} done, {run.samples_failed} failed, {run.samples_cached} cached "
                f"of {run.samples_total}; {run.input_tokens + run.output_tokens} tokens, ${run.cost:.4f}"
                + (f"; judge {run.judge_requests} judged, ${run.judge_cost:.4f}" if run.judge_config_id else "")
            )
            if not run.is_active:
                summary = selectors.run_routing_summary(run=run)
                self.stdout.write(
                    f"Auto-accepted {summary['auto_accepted']}, needs review {summary['needs_review']} "
                    f"({', '.join(f'{k} {v}' for k, v in summary['reasons'].items())})."
                )
                break
            time.sleep(2)

    def _print_plan(self, plan):
        per_request = f" of {plan.samples_per_request} samples each" if plan.samples_per_request > 1 else ""
        self.stdout.write(f"{plan.pairs} pairs, {plan.requests} teacher requests{per_request}"
                          f"{'' if plan.is_llm else ' (heuristic baseline, no LLM)'}.")  # fmt: skip
        for message in plan.example_messages:
            self.stdout.write(f"--- {message['role']} ---\n{message['content']}")
        self.stdout.write(
            f"≈ {plan.estimated_input_tokens} input + {plan.estimated_output_tokens} output tokens "
            f"({plan.token_basis}), {plan.cached_share:.0%} already cached: ≈ ${plan.teacher_estimated_cost}"
            + (f" (batch price: {plan.price_factor} × the listed prices)." if plan.price_factor != 1 else ".")
        )
        if judge := plan.judge:
            self.stdout.write(
                f"Judge {judge.config}: {judge.requests} requests, ≈ {judge.estimated_input_tokens} input + "
                f"{judge.estimated_output_tokens} output tokens ({judge.token_basis}), {judge.cached_share:.0%} "
                f"already cached: ≈ ${judge.estimated_cost}. Teacher ≈ ${plan.teacher_estimated_cost}, "
                f"total ≈ ${plan.estimated_cost}."
            )
        if plan.is_llm:
            self.stdout.write(
                f"Of the input, ≈ {plan.estimated_cached_input_tokens} tokens from the provider's prompt cache "
                f"({plan.cached_input_basis}); ≈ ${plan.cost_per_1000_pairs} per 1,000 labelled pairs."
            )
