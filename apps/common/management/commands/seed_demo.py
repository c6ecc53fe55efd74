from django.conf import settings
from django.core.management.base import BaseCommand

from apps.bots.demo import demo_bots_seed
from apps.dashboard.services import demo_data_seed, demo_user_ensure
from apps.signals.demo import demo_signal_bot_seed


class Command(BaseCommand):
    help = "Create the demo user and its demo data if they are missing, then print the login."

    def handle(self, *args, **options):
        email, password = settings.DEMO_USER_EMAIL, settings.DEMO_USER_PASSWORD
        user = demo_user_ensure(email=email, password=password)
        added = demo_data_seed(user=user)
        added += demo_bots_seed(user=user)
        added += demo_signal_bot_seed(user=user)
        banner = "=" * 64
        lines = [
            banner,
            f" tradeloop is starting on {settings.SITE_URL}",
            f" demo login: {email}  /  {password}",
        ]
        lines += [f" demo data added: {item}" for item in added]
        self.stdout.write("\n".join([*lines, banner]))
