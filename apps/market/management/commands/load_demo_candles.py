from django.core.management.base import BaseCommand

from apps.market.services import candles_load_demo


class Command(BaseCommand):
    help = (
        "Load the real candles shipped in data/candles (see its README) as binance series. "
        "Idempotent and quick: a file already fully loaded is skipped unread."
    )

    def handle(self, *args, **options):
        for file_name, result in candles_load_demo():
            if result is None:
                self.stdout.write(f"{file_name}: already loaded")
            else:
                self.stdout.write(f"{file_name}: {result.summary()}")
