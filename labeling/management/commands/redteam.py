"""``manage.py redteam create --policy SLUG --seed S --size N --categories injection,protected_attribute
--user NAME [--import-batch ID] [--name TEXT]`` and ``manage.py redteam show ID --user NAME [--diff]``."""

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError

from labeling.models import RedTeamSet
from labeling.selectors.redteam import red_team_set_get, red_team_variant_diffs
from labeling.services.redteam import red_team_set_create
from policyhub.models import Policy


class Command(BaseCommand):
    help = "Create a red-team set of a policy (seeded variants of real pairs) or show one."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="Sample pairs and generate their variants.")
        create.add_argument("--policy", required=True, help="Policy slug.")
        create.add_argument("--seed", required=True, type=int)
        create.add_argument("--size", required=True, type=int, help="N: how many pairs to sample.")
        create.add_argument("--categories", required=True, help="Comma-separated, e.g. injection,irrelevant_noise.")
        create.add_argument("--import-batch", type=int, help="Sample only the pairs of this pairs import.")
        create.add_argument("--name", default="")
        create.add_argument("--user", required=True, help="A policy owner's username (recorded as the creator).")
        show = sub.add_parser("show", help="Print a set's variants and their invariants.")
        show.add_argument("set_id", type=int)
        show.add_argument("--user", required=True, help="A policy owner's or ML engineer's username.")
        show.add_argument("--diff", action="store_true", help="Print each variant's diff against its original.")

    def handle(self, *args, **opts):
        user = get_user_model().objects.filter(username=opts["user"]).first()
        if user is None:
            raise CommandError(f"No user {opts['user']!r}.")
        try:
            if opts["action"] == "create":
                return self._create(user, opts)
            return self._show(user, opts)
        except (ValidationError, PermissionDenied) as error:
            raise CommandError(" ".join(getattr(error, "messages", [str(error)]))) from error

    def _create(self, user, opts):
        policy = Policy.objects.filter(slug=opts["policy"]).first()
        if policy is None:
            raise CommandError(f"No policy {opts['policy']!r}.")
        red_team_set = red_team_set_create(
            user=user, policy=policy, name=opts["name"], seed=opts["seed"], sample_size=opts["size"],
            categories=opts["categories"].split(","), import_batch_id=opts["import_batch"],
        )  # fmt: skip
        self.stdout.write(
            f"Red-team set #{red_team_set.pk}: {red_team_set.variants.count()} variants of {red_team_set.sample_size} "
            f"pairs ({', '.join(red_team_set.categories)}), seed {red_team_set.seed}."
        )

    def _show(self, user, opts):
        try:
            red_team_set = red_team_set_get(user=user, set_id=opts["set_id"])
        except RedTeamSet.DoesNotExist as error:
            raise CommandError(f"No red-team set #{opts['set_id']}.") from error
        self.stdout.write(str(red_team_set))
        for item in red_team_variant_diffs(user=user, red_team_set=red_team_set):
            v = item.variant
            expects = [v.expected_label] + ([f"flag {v.expected_flag}"] if v.expected_flag else [])
            if v.rationale_must_not_mention:
                expects.append(f"rationale omits {v.attribute}")
            if v.member_lacks:
                expects.append(f"rationale does not credit the member with {', '.join(v.member_lacks)}")
            pair = f"{item.clean_member['member_id']} × {item.clean_job['job_id']}"
            self.stdout.write(f"#{v.index} {v.category} {pair} {v.field} [{v.style}]: expects {', '.join(expects)}")
            for change in item.changes if opts["diff"] else ():
                self.stdout.write(change.diff)
