"""Read every stored file of built exports in full and compare each with the sha256 and size its manifest records:
``manage.py export_verify [ID …]`` (default: every ready export). Exits 1 if any file was changed or is missing."""

from django.core.management.base import BaseCommand, CommandError

from exports import services
from exports.models import DatasetExport


class Command(BaseCommand):
    help = "Check that the stored files of built exports are still the ones built (sha256 and size)."

    def add_arguments(self, parser):
        parser.add_argument("ids", nargs="*", type=int, help="export ids (default: every ready export)")

    def handle(self, *args, **opts):
        exports = DatasetExport.objects.filter(status=DatasetExport.Status.READY).order_by("pk")
        if opts["ids"]:
            exports = exports.filter(pk__in=opts["ids"])
            missing = sorted(set(opts["ids"]) - set(exports.values_list("pk", flat=True)))
            if missing:
                raise CommandError(f"No built export #{missing[0]}.")
        bad = 0
        for export in exports:
            problems = services.export_verify(export=export)
            if problems:
                bad += 1
                for problem in problems:
                    self.stderr.write(f"export #{export.pk}: {problem}")
            else:
                self.stdout.write(f"export #{export.pk}: intact ({services.export_location(export)})")
        if bad:
            raise CommandError(f"{bad} export(s) have stored files that are not the ones built.")
