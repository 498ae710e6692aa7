"""``manage.py labelstudio push --run N`` / ``manage.py labelstudio pull --run N``: the Label Studio round trip."""

import json

from django.core.management.base import BaseCommand, CommandError

from labeling import selectors, services
from labeling.models import LabelingRun


class Command(BaseCommand):
    help = "Push a run's needs-review items to Label Studio, or pull the annotations back as reviews."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["push", "pull"])
        parser.add_argument("--run", required=True, type=int, help="Run id.")
        parser.add_argument("--json", action="store_true", help="Print the pull report as JSON.")

    def handle(self, *args, **opts):
        try:
            run = selectors.run_get(pk=opts["run"])
        except LabelingRun.DoesNotExist:
            raise CommandError(f"No run #{opts['run']}.") from None
        try:
            if opts["action"] == "push":
                result = services.labelstudio_push(run=run)
                self.stdout.write(f"{result.message} {result.url}")
                return
            report = services.labelstudio_pull(run=run)
        except services.LabelStudioError as error:
            raise CommandError(str(error)) from error
        if opts["json"]:
            self.stdout.write(json.dumps(report.as_dict(), indent=2))
            return
        self.stdout.write(report.message)
        for row in report.skipped:
            self.stdout.write(
                f"  skipped annotation #{row['annotation_id']} (item #{row['candidate_id']}, {row['email'] or '?'}):"
                f" {row['reason']}"
            )
