from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction

from apps.accounts.models import User
from apps.audit.services import audit_record


class Command(BaseCommand):
    help = "Create the demo user and its demo data if they are missing, then print the login."

    def handle(self, *args, **options):
        email, password = settings.DEMO_USER_EMAIL, settings.DEMO_USER_PASSWORD
        with transaction.atomic():
            user = User.objects.filter(email=email).first()
            if user is None:
                user = User.objects.create_user(email=email, password=password, display_name="Demo")
                audit_record(
                    event_type="user.demo_created",
                    actor=None,
                    owner=user,
                    target=user,
                    actor_label="seed_demo",
                )
        banner = "=" * 64
        self.stdout.write(
            f"{banner}\n tradeloop is starting on {settings.SITE_URL}\n"
            f" demo login: {email}  /  {password}\n{banner}"
        )
