from django.core.management.base import BaseCommand

from policyhub.demo import demo_seed


class Command(BaseCommand):
    help = (
        "Load the demo users, the member–job policy (published v1, draft v2), its data and one round of the loop "
        "(a run, reviews, gold, feedback, gates, an export, a student evaluation, a red-team run). Safe to run again."
    )

    def handle(self, *args, **options):
        result = demo_seed(with_loop=True)
        state = "created" if result.created else "already present"
        self.stdout.write(f"Demo policy '{result.policy.slug}' {state}.")
        self.stdout.write("Demo users (username / role / password):")
        for username, (role, password) in result.credentials.items():
            self.stdout.write(f"  {username:<10} {role:<13} {password}")
