"""``manage.py student import --export N --name NAME --version V --user U predictions.csv`` (or .jsonl, .parquet;
stored and imported on a worker, waited for unless ``--no-wait``),
``manage.py student report --evaluation N [--json]`` and ``manage.py student queue --evaluation N --user U
[--against teacher|gold|either] [--limit N]``."""

import argparse
import json
import time
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.files import File
from django.core.management.base import BaseCommand, CommandError

from exports.models import DatasetExport
from labeling.models import StudentEvaluation
from labeling.selectors import students as selectors
from labeling.services import students as services

#: How often a waiting import looks at its evaluation.
POLL_SECONDS = 0.5


class Command(BaseCommand):
    help = "Import a distilled student's predictions on an export, print its report, or queue its disagreements."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        imp = actions.add_parser("import", help="Import predictions on a worker (all or nothing).")
        imp.add_argument("path", type=Path)
        imp.add_argument("--export", type=int, required=True, help="The export the student was trained on.")
        imp.add_argument("--name", required=True, help="The student's name.")
        imp.add_argument("--version", dest="student_version", required=True, help="The student's version.")
        imp.add_argument("--user", required=True, help="Username of the ML engineer or policy owner importing it.")
        imp.add_argument("--format", choices=["csv", "jsonl", "parquet"], help="Default: from the file extension.")
        imp.add_argument(
            "--wait", action=argparse.BooleanOptionalAction, default=True,
            help="Wait for the worker to finish the import (default); --no-wait prints the evaluation's id at once.",
        )  # fmt: skip
        imp.add_argument("--show-errors", type=int, default=50, help="How many bad rows to print (default 50).")
        report = actions.add_parser("report", help="Print a student's scores.")
        report.add_argument("--evaluation", type=int, required=True)
        report.add_argument("--json", dest="as_json", action="store_true", help="The figures as JSON.")
        queue = actions.add_parser("queue", help="Queue the student's disagreements for annotators.")
        queue.add_argument("--evaluation", type=int, required=True)
        queue.add_argument("--user", required=True)
        queue.add_argument("--against", choices=services.AGAINST, default="teacher")
        queue.add_argument("--limit", type=int)

    def handle(self, *args, action, **opts):
        try:
            getattr(self, f"_{action}")(**opts)
        except services.StudentError as error:
            raise CommandError(f"{error.field}: {error.message}") from None
        except PermissionDenied as error:
            raise CommandError(str(error)) from None

    def _user(self, username):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user {username!r}.")
        return user

    def _evaluation(self, pk) -> StudentEvaluation:
        try:
            return selectors.student_get(pk=pk)
        except StudentEvaluation.DoesNotExist:
            raise CommandError(f"No student evaluation #{pk}.") from None

    def _import(self, *, path, export, name, student_version, user, format, wait, show_errors, **_):
        if not path.is_file():
            raise CommandError(f"{path}: no such file.")
        found = DatasetExport.objects.filter(pk=export).first()
        if found is None:
            raise CommandError(f"No export #{export}.")
        with path.open("rb") as stream:
            result = services.student_upload_enqueue(
                user=self._user(user), export=found, upload=File(stream, name=path.name), student_name=name,
                student_version=student_version, file_format=format,
            )  # fmt: skip
        evaluation = result.evaluation
        if evaluation is not None and wait:
            self.stdout.write(f"Student evaluation #{evaluation.pk} queued; waiting for a worker to import it…")
            while evaluation.status in ("pending", "running"):
                time.sleep(POLL_SECONDS)
                evaluation = selectors.student_get(pk=evaluation.pk)
            result = services.StudentImportResult(result.source_name, evaluation, created=True)
        if not result.ok:
            for error in result.errors[:show_errors]:
                self.stderr.write(f"line {error.line}: {error.field}: {error.reason}")
            raise CommandError(result.summary())
        self.stdout.write(f"{result.summary()} Student evaluation #{evaluation.pk}.")
        if evaluation.in_train:
            self.stdout.write(f"Warning: {evaluation.in_train} predicted pairs were in the export's train split.")

    def _report(self, *, evaluation, as_json: bool = False, **_):
        report = selectors.student_report(evaluation=self._evaluation(evaluation))
        figures = selectors.student_figures(report)
        if as_json:
            self.stdout.write(json.dumps(figures, indent=2))
            return
        for key, c in figures["comparisons"].items():
            accuracy = "—" if c["accuracy"] is None else f"{c['accuracy']:.3f}"
            ece = c["calibration"]["ece"]
            self.stdout.write(
                f"{key}: accuracy {accuracy} over {c['n']}" + (f", ECE {ece:.3f}" if ece is not None else "")
            )
        if report.leakage:
            self.stdout.write(f"Warning: {report.evaluation.in_train} predicted pairs were in the train split.")

    def _queue(self, *, evaluation, user, against, limit, **_):
        result = services.student_disagreements_queue(
            user=self._user(user), evaluation=self._evaluation(evaluation), against=against, limit=limit
        )
        self.stdout.write(result.summary())
