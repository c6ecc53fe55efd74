from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.common.errors import ApplicationError
from apps.market.services import candles_import_csv


class Command(BaseCommand):
    help = (
        "Import a candle CSV (timestamp,open,high,low,close,volume; ISO-8601 UTC open times) "
        "into the candle store. Idempotent: candles already stored are counted, not rewritten."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="CSV file, e.g. data/candles/BTC-USDT_1h.csv")
        parser.add_argument("--exchange", required=True, help="ccxt exchange id, e.g. binance")
        parser.add_argument("--symbol", required=True, help="ccxt symbol, e.g. BTC/USDT")
        parser.add_argument(
            "--timeframe", required=True, help="ccxt timeframe: 1m 5m 15m 1h 4h 1d 1w 1M ..."
        )

    def handle(self, *args, **options):
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        try:
            result = candles_import_csv(
                path=path,
                exchange=options["exchange"],
                symbol=options["symbol"],
                timeframe=options["timeframe"],
                actor_label="manage.py import_candles",
            )
        except ApplicationError as exc:
            where = f"--{exc.field}: " if exc.field in ("exchange", "symbol", "timeframe") else ""
            raise CommandError(f"{where}{exc.message}; nothing was imported") from exc
        self.stdout.write(result.summary())
