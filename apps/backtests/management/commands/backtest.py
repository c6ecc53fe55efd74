import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.engine.backtest import (
    BacktestReport,
    StrategySpec,
    StrategySpecError,
    run_backtest,
    strategy_from_file,
)
from apps.engine.candles import CandleDataError, read_csv
from apps.engine.conditions import ConditionError
from apps.engine.sandbox import SandboxLimits
from apps.engine.script_backtest import ScriptBacktestError, run_script_backtest
from apps.engine.simulator import ExecutionConfig, SimulationConfigError


class Command(BaseCommand):
    help = (
        "Backtest a strategy on a candle CSV (timestamp,open,high,low,close,volume) without "
        "importing it. A decision on bar t's close fills at bar t+1's open."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--strategy",
            required=True,
            help="template name (e.g. sma_cross), a tree .json, or a script .py run in the sandbox",
        )
        parser.add_argument(
            "--params", default="{}", help="strategy parameters as JSON, e.g. '{\"fast\": 10}'"
        )
        parser.add_argument("--data", required=True, help="candle CSV file")
        parser.add_argument("--cash", type=float, default=10_000.0)
        parser.add_argument(
            "--fee", type=float, default=0.0, help="fee per side, e.g. 0.001 = 0.1 %%"
        )
        parser.add_argument(
            "--slippage", type=float, default=0.0, help="fraction of price per fill"
        )
        parser.add_argument("--stop-loss", type=float, help="fraction below entry, e.g. 0.05")
        parser.add_argument("--take-profit", type=float, help="fraction above entry")
        parser.add_argument("--trailing-stop", type=float, help="fraction below the highest high")
        parser.add_argument(
            "--sizing", choices=["all_in", "percent", "fixed", "risk"], default="all_in"
        )
        parser.add_argument(
            "--size", type=float, default=1.0, help="fraction of equity, or quote amount for fixed"
        )
        parser.add_argument("--max-trades-per-day", type=int)
        parser.add_argument(
            "--max-drawdown", type=float, help="stop trading at this drawdown fraction"
        )
        parser.add_argument("--json", action="store_true", help="print metrics and trades as JSON")
        limits = SandboxLimits()
        parser.add_argument(
            "--cpu-limit",
            type=float,
            default=limits.cpu_seconds,
            help="script strategies: CPU seconds for the sandbox",
        )
        parser.add_argument(
            "--wall-limit",
            type=float,
            default=limits.wall_seconds,
            help="script strategies: wall-clock seconds for the sandbox",
        )
        parser.add_argument(
            "--memory-limit",
            type=float,
            default=limits.memory_mb,
            help="script strategies: memory budget in MB for the sandbox",
        )

    def handle(self, *args, **options):
        try:
            params = json.loads(options["params"])
        except json.JSONDecodeError as exc:
            raise CommandError(f"--params is not valid JSON: {exc}") from exc
        if not isinstance(params, dict):
            raise CommandError("--params must be a JSON object")
        name = options["strategy"]
        try:
            if name.endswith(".py"):
                report: BacktestReport = self._script(name, params, options)
            else:
                report = run_backtest(
                    self._strategy(name, params), read_csv(options["data"]), self._config(options)
                )
        except ScriptBacktestError as exc:
            if exc.log:
                self.stderr.write(exc.log.rstrip("\n"))
            raise CommandError(str(exc)) from exc
        except (StrategySpecError, ConditionError, CandleDataError, SimulationConfigError) as exc:
            raise CommandError(str(exc)) from exc
        if options["json"]:
            self.stdout.write(json.dumps(report.as_json(), indent=2))
            return
        for key, value in report.metrics.as_dict().items():
            self.stdout.write(f"{key:>28}: {value}")

    def _script(self, path: str, params: dict, options: dict) -> BacktestReport:
        """A script strategy: its `main(sdk, params)` runs bar by bar in the sandbox."""
        try:
            source = Path(path).read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"cannot read script {path}: {exc}") from exc
        try:
            limits = SandboxLimits(
                cpu_seconds=options["cpu_limit"],
                wall_seconds=options["wall_limit"],
                memory_mb=options["memory_limit"],
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        return run_script_backtest(
            source,
            params,
            read_csv(options["data"]),
            self._config(options),
            limits,
            filename=Path(path).name,
        )

    def _strategy(self, name: str, params: dict) -> StrategySpec:
        if name.endswith(".json") or Path(name).is_file():
            return strategy_from_file(name, params)
        return StrategySpec.from_template(name, params)

    def _config(self, options: dict) -> ExecutionConfig:
        config = ExecutionConfig(
            cash=options["cash"],
            fee=options["fee"],
            slippage=options["slippage"],
            stop_loss=options["stop_loss"],
            take_profit=options["take_profit"],
            trailing_stop=options["trailing_stop"],
            sizing=options["sizing"],
            size_value=options["size"],
            max_trades_per_day=options["max_trades_per_day"],
            max_drawdown_stop=options["max_drawdown"],
        )
        config.validate()
        return config
