"""``manage.py figures rebuild [--run ID ...] [--version ID ...] [--queue]``: compute kept figures (agreement, a
finished run's counts, the editor's rule counts) again from scratch, after data changed where no write marks them
stale: the admin, SQL, a restored backup. Without ``--run``/``--version``: all of them."""

from django.core.management.base import BaseCommand, CommandError

from labeling.models import LabelingRun
from labeling.services import figures_rebuild
from policyhub.models import PolicyVersion


class Command(BaseCommand):
    help = "Compute kept figures again from scratch (all, or those of the given runs and versions)."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        rebuild = sub.add_parser("rebuild", help="Mark the figures stale and compute them again.")
        rebuild.add_argument("--run", type=int, action="append", help="A run's id (repeatable).")
        rebuild.add_argument("--version", type=int, action="append", help="A policy version's id (repeatable).")
        rebuild.add_argument("--queue", action="store_true", help="Leave the computing to the workers.")

    def handle(self, *args, **opts):
        runs, versions = opts["run"], opts["version"]
        if runs and (missing := set(runs) - set(LabelingRun.objects.filter(pk__in=runs).values_list("pk", flat=True))):
            raise CommandError(f"No run {', '.join(map(str, sorted(missing)))}.")
        if versions and (
            missing := set(versions) - set(PolicyVersion.objects.filter(pk__in=versions).values_list("pk", flat=True))
        ):
            raise CommandError(f"No policy version {', '.join(map(str, sorted(missing)))}.")
        marked, computed = figures_rebuild(run_ids=runs, version_ids=versions, here=not opts["queue"])
        if opts["queue"]:
            self.stdout.write(f"{marked} kept figures marked stale; the workers compute them (pages say so meanwhile).")
        else:
            self.stdout.write(f"{computed} of {marked} kept figures computed again.")
