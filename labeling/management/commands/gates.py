"""``manage.py gates check --policy SLUG --user NAME [--json]``: the quality-gate check of the policy's draft, as
the publish page shows it; exits 1 when publishing would be blocked (a failing gate, or a preview is needed), so a
script or CI step can stop there."""

import json

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from labeling.selectors.gates import gates_for_draft
from policyhub import roles
from policyhub.models import Policy


class Command(BaseCommand):
    help = "Check a policy's draft against its quality gates (exit status 1 when publishing would be blocked)."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        check = sub.add_parser("check", help="Print every gate's result for the policy's draft.")
        check.add_argument("--policy", required=True, help="Policy slug.")
        check.add_argument("--user", required=True, help="A policy owner's username (drafts are theirs only).")
        check.add_argument("--json", action="store_true", help="Print the check as JSON.")

    def handle(self, *args, **opts):
        user = get_user_model().objects.filter(username=opts["user"]).first()
        if user is None:
            raise CommandError(f"No user {opts['user']!r}.")
        if not roles.has_role(user, roles.POLICY_OWNER):
            raise CommandError(f"{user.get_username()} is not a policy owner: drafts are policy owners' only.")
        policy = Policy.objects.filter(slug=opts["policy"]).first()
        if policy is None:
            raise CommandError(f"No policy {opts['policy']!r}.")
        check = gates_for_draft(policy)
        if check is None:
            raise CommandError(f"{policy.slug} has no draft to check.")
        if opts["json"]:
            self.stdout.write(json.dumps(check.as_dict(), indent=2, sort_keys=True))
        else:
            self._print(policy, check)
        if not check.passed:
            raise CommandError(f"Publishing v{check.draft.number} would be blocked: {check.summary}")

    def _print(self, policy, check):
        draft = check.draft
        if not check.configured:
            self.stdout.write(f"{policy.slug} v{draft.number}: no quality gates; publishing needs no check.")
            return
        if check.needs_preview:
            self.stdout.write(f"{policy.slug} v{draft.number}: {check.preview_problem}")
            return
        source = f"preview #{check.preview.pk}" if check.preview else "no gold preview"
        self.stdout.write(f"{policy.slug} v{draft.number} (revision {draft.revision}), {source}:")
        for result in check.results:
            flag = " BLOCKS" if result.blocking else ""
            self.stdout.write(f"  {result.status:<12} {result.name}: {result.detail}{flag}")
        if check.passed:
            self.stdout.write("Every gate passes.")
