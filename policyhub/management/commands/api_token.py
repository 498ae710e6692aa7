"""Create, list and revoke API tokens: ``manage.py api_token create --user alice --name laptop``."""

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError

from policyhub import services
from policyhub.models import ApiToken


class Command(BaseCommand):
    help = "Create, list or revoke a user's API tokens."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="Issue a token; it is printed once.")
        create.add_argument("--user", required=True)
        create.add_argument("--name", required=True)
        create.add_argument(
            "--expires-in-days", default=str(services.DEFAULT_TOKEN_LIFETIME_DAYS),
            help=f"One of {', '.join(str(d or 'never') for d in services.TOKEN_LIFETIMES_DAYS)} "
            f"(default {services.DEFAULT_TOKEN_LIFETIME_DAYS}).",
        )  # fmt: skip
        listing = sub.add_parser("list", help="List a user's tokens.")
        listing.add_argument("--user", required=True)
        revoke = sub.add_parser("revoke", help="Revoke a token by its id or prefix.")
        revoke.add_argument("token", help="The token id (from 'list') or its prefix.")

    def _user(self, username):
        try:
            return get_user_model().objects.get_by_natural_key(username)
        except get_user_model().DoesNotExist as error:
            raise CommandError(f"No user {username!r}.") from error

    def handle(self, *args, action, **options):
        if action == "create":
            days = options["expires_in_days"]
            try:
                issued = services.api_token_create(
                    user=self._user(options["user"]), name=options["name"],
                    lifetime_days=None if days == "never" else int(days) if days.isdigit() else days,
                )  # fmt: skip
            except (ValidationError, PermissionDenied) as error:
                raise CommandError(" ".join(getattr(error, "messages", [str(error)]))) from error
            self.stdout.write(issued.raw)
        elif action == "list":
            for token in ApiToken.objects.filter(user=self._user(options["user"])):
                expires = f"{token.expires_at:%Y-%m-%d %H:%M}" if token.expires_at else "never"
                self.stdout.write(f"{token.pk}\t{token.prefix}…\t{token.name}\texpires {expires}\t{token.state}")
        else:
            ref = options["token"]
            tokens = ApiToken.objects.filter(pk=int(ref)) if ref.isdigit() else ApiToken.objects.filter(prefix=ref)
            if tokens.count() != 1:
                raise CommandError(f"No single token matches {ref!r}.")
            token = tokens.get()
            services.api_token_revoke(token=token, user=token.user)
            self.stdout.write(f"Revoked {token}.")
