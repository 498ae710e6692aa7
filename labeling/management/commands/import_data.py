"""``manage.py import_data members members.csv`` (or jobs / pairs; .csv or .jsonl)."""

from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from labeling.imports.schemas import SCHEMAS
from labeling.services import import_file


class Command(BaseCommand):
    help = "Import members, jobs or pairs from a CSV or JSONL file, all or nothing."

    def add_arguments(self, parser):
        parser.add_argument("kind", choices=sorted(SCHEMAS))
        parser.add_argument("path", type=Path)
        parser.add_argument("--format", choices=["csv", "jsonl"], help="Default: from the file extension.")
        parser.add_argument("--user", help="Username recorded as the importer.")
        parser.add_argument("--show-errors", type=int, default=50, help="How many bad rows to print (default 50).")

    def handle(self, *args, kind, path, format, user, show_errors, **options):
        if not path.is_file():
            raise CommandError(f"{path}: no such file.")
        importer = None
        if user:
            importer = get_user_model().objects.filter(username=user).first()
            if importer is None:
                raise CommandError(f"No user {user!r}.")
        with path.open("rb") as stream:
            result = import_file(kind=kind, stream=stream, name=path.name, user=importer, file_format=format)
        if result.ok:
            self.stdout.write(result.summary())
            return
        for error in result.batch.errors[:show_errors]:
            self.stderr.write(f"line {error['line']}: {error['field']}: {error['reason']}")
        raise CommandError(result.summary())
