"""``manage.py export_dataset --policy member-job-match --version 1 [--run 3 …] [filters] [split] [--queue]``."""

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError

from exports import services
from exports.models import DatasetExport
from exports.selection import ExportError
from labeling.models import Candidate, LabelingRun
from policyhub.jobs import failing_job
from policyhub.models import PolicyVersion


class Command(BaseCommand):
    help = "Create a dataset export of approved labels and build it here (or on a worker with --queue)."

    def create_parser(self, prog_name, subcommand, **kwargs):
        # our --version (the policy version) replaces Django's --version (the Django version)
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve", **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("--policy", required=True, help="Policy slug.")
        parser.add_argument("--version", required=True, type=int, help="Published version number.")
        parser.add_argument("--run", type=int, action="append", dest="runs", help="A run to export (repeat). "
                            "Default: every run of the version.")  # fmt: skip
        parser.add_argument("--include-unapproved", action="store_true", help="Also items still waiting for review.")
        parser.add_argument("--include-flagged", action="store_true",
                            help="Also flagged items (failed check, injection) no human approved.")  # fmt: skip
        parser.add_argument("--human-only", action="store_true", help="Only human-reviewed items.")
        parser.add_argument("--gold-only", action="store_true", help="Only pairs in the gold set.")
        parser.add_argument("--reason", action="append", default=[], choices=Candidate.REASONS,
                            help="Only items routed to review for this reason (repeat).")  # fmt: skip
        parser.add_argument("--min-confidence", help="Minimum teacher confidence, 0–1.")
        parser.add_argument("--min-agreement", help="Minimum annotator agreement, 0–1.")
        parser.add_argument("--split", default="0.8,0.1,0.1", help="train,validation,test ratios.")
        parser.add_argument("--seed", default="0", help="Split seed (default 0).")
        parser.add_argument("--group-by-job", action="store_true", help="Keep each job in one split too.")
        parser.add_argument("--user", help="Username recorded as the creator (must be an ml_engineer).")
        parser.add_argument("--queue", action="store_true", help="Let a Celery worker build it; print the id.")

    def handle(self, *args, **opts):
        version = PolicyVersion.objects.filter(policy__slug=opts["policy"], number=opts["version"]).first()
        if version is None:
            raise CommandError(f"No version {opts['version']} of policy {opts['policy']!r}.")
        runs = list(LabelingRun.objects.filter(pk__in=opts["runs"] or []))
        missing = sorted(set(opts["runs"] or []) - {run.pk for run in runs})
        if missing:
            raise CommandError(f"No run #{missing[0]}.")
        user = None
        if opts["user"]:
            user = get_user_model().objects.filter(username=opts["user"]).first()
            if user is None:
                raise CommandError(f"No user {opts['user']!r}.")
        ratios = opts["split"].split(",")
        if len(ratios) != 3:
            raise CommandError(f"--split takes three ratios like 0.8,0.1,0.1, not {opts['split']!r}.")
        filters = {"approved_only": not opts["include_unapproved"], "human_only": opts["human_only"],
                   "gold_only": opts["gold_only"], "reasons": opts["reason"],
                   "min_confidence": opts["min_confidence"], "min_agreement": opts["min_agreement"],
                   "include_flagged": opts["include_flagged"]}  # fmt: skip
        split = {"train": ratios[0], "validation": ratios[1], "test": ratios[2], "seed": opts["seed"],
                 "group_by_job": opts["group_by_job"]}  # fmt: skip
        try:
            export, _ = services.export_create(user=user, version=version, runs=runs, filters=filters, split=split)
        except ExportError as error:
            raise CommandError(f"{error.field}: {error.message}") from None
        except PermissionDenied as error:
            raise CommandError(str(error)) from None
        if opts["queue"]:
            self.stdout.write(f"Export #{export.pk} queued for a worker.")
            return
        self.stderr.write(f"Building export #{export.pk} …")
        with failing_job(lambda error: services.export_fail(export_id=export.pk, error=error)):
            export = services.export_build(export_id=export.pk)
        if export.status != DatasetExport.Status.READY:
            raise CommandError(f"Export #{export.pk} failed: {export.error}")
        self.stdout.write(f"Export #{export.pk}: {export.manifest['rows']} rows in {services.export_location(export)}")
        for entry in export.files:
            self.stdout.write(f"  {entry['name']:<20} {entry['size']:>12} bytes  sha256 {entry['sha256']}")
