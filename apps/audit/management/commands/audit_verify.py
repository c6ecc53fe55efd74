from django.core.management.base import BaseCommand, CommandError

from apps.audit.selectors import audit_chain_verify


class Command(BaseCommand):
    help = "Verify the audit hash chain; report the first broken sequence number (AUD-3)."

    def handle(self, *args, **options):
        report = audit_chain_verify()
        if not report.ok:
            raise CommandError(
                f"audit chain BROKEN at seq {report.first_broken_seq}: {report.reason} "
                f"({report.checked} rows verified before it)"
            )
        self.stdout.write(self.style.SUCCESS(f"audit chain OK: {report.checked} events verified"))
