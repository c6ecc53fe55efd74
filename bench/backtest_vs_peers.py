"""tradeloop's backtester against backtesting.py and vectorbt, in one process.

Two strategies, long only, all-in, 0.1 % fee per side, decisions on bar t's close filled at
bar t+1's open:
- SMA(10/30) cross: buy on a cross up, sell on a cross down;
- RSI(14) swing: buy when RSI crosses up through 30, sell when it crosses down through 70.

Part 1 runs both on the real hourly BTC files (the largest real file included) through all
engines and through `manage.py backtest --json`, and prints whether the trades are identical
and each final equity. vectorbt runs twice: with its own indicators, and on tradeloop's
decisions (which separates indicator differences from fill-model differences).
Part 2 times each engine on synthetic candles (1M by default): cold (first call, including
vectorbt's numba compilation) and warm (best of several runs, after import and
compilation), and prints tradeloop's speed ratios. Warm runs take turns (tradeloop,
backtesting.py, vectorbt, then again), so load from other processes falls on every engine
alike, and each is reported as wall-clock and CPU time (time.process_time, which a busy
machine distorts less). A timed run ends at the engine's own results (final equity, trade
records), never at our comparison lists.

Usage: python bench/backtest_vs_peers.py [--candles 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
warnings.filterwarnings("ignore")
os.environ.setdefault("TQDM_DISABLE", "1")  # backtesting.py's progress bar

from apps.engine.backtest import StrategySpec, run_backtest, signals  # noqa: E402
from apps.engine.candles import CandleArrays, read_csv  # noqa: E402
from apps.engine.indicators import rsi, sma  # noqa: E402
from apps.engine.simulator import ExecutionConfig  # noqa: E402

FEE = 0.001
CASH = 10_000.0
DATA = ROOT / "data" / "candles"
STRATEGIES = {
    "sma_cross": {"fast": 10, "slow": 30},
    "rsi_swing": {"period": 14, "oversold": 30, "overbought": 70},
}
Trades = list[tuple[np.datetime64, np.datetime64]]
# A run returns (a function building the closed trades as (entry, exit) times, the final
# equity, the closed-trade count); the list is built outside the timed part.
Run = tuple[Callable[[], Trades], float, int]


def tradeloop_run(candles: CandleArrays, strategy: str) -> Run:
    spec = StrategySpec.from_template(strategy, STRATEGIES[strategy])
    report = run_backtest(spec, candles, ExecutionConfig(cash=CASH, fee=FEE))

    def trades() -> Trades:
        times, rows = candles.time, report.result.trades
        return [
            (times[t.entry_index], times[t.exit_index]) for t in rows if t.exit_index is not None
        ]

    return trades, report.metrics.final_equity, report.metrics.closed_trades


def cli_run(path: Path, strategy: str) -> tuple[Trades, float]:
    """The same backtest through `manage.py backtest --json`, in a child process."""
    command = [
        sys.executable, str(ROOT / "manage.py"), "backtest", "--strategy", strategy,
        "--params", json.dumps(STRATEGIES[strategy]), "--data", str(path),
        "--fee", str(FEE), "--json",
    ]  # fmt: skip
    env = {**os.environ, "DJANGO_LOG_LEVEL": "WARNING"}
    done = subprocess.run(command, capture_output=True, check=True, text=True, env=env)  # noqa: S603
    out = json.loads(done.stdout)
    trades = [
        (
            np.datetime64(t["entry_time"].rstrip("Z"), "ns"),
            np.datetime64(t["exit_time"].rstrip("Z"), "ns"),
        )
        for t in out["trades"]
        if t["exit_time"] is not None
    ]
    return trades, out["metrics"]["final_equity"]


def backtesting_py_run(candles: CandleArrays, strategy: str) -> Run:
    from backtesting import Strategy
    from backtesting.lib import FractionalBacktest, crossover

    params = STRATEGIES[strategy]

    # Long only, all-in: entries count only when flat and exits only when long. Indicators
    # read the real prices: FractionalBacktest scales self.data by 1e-8 (whole satoshis).
    class SmaCross(Strategy):
        def init(self):
            self.fast = self.I(sma, candles.close, params.get("fast", 10))
            self.slow = self.I(sma, candles.close, params.get("slow", 30))

        def next(self):
            if not self.position and crossover(self.fast, self.slow):
                self.buy()
            elif self.position and crossover(self.slow, self.fast):
                self.position.close()

    class RsiSwing(Strategy):
        def init(self):
            self.rsi = self.I(rsi, candles.close, params.get("period", 14))

        def next(self):
            if not self.position and crossover(self.rsi, params.get("oversold", 30)):
                self.buy()
            elif self.position and crossover(params.get("overbought", 70), self.rsi):
                self.position.close()

    frame = pd.DataFrame(
        {"Open": candles.open, "High": candles.high, "Low": candles.low,
         "Close": candles.close, "Volume": candles.volume},
        index=pd.DatetimeIndex(candles.time),
    )  # fmt: skip
    cls = SmaCross if strategy == "sma_cross" else RsiSwing
    stats = FractionalBacktest(frame, cls, cash=CASH, commission=FEE).run()

    def trades() -> Trades:
        entries = pd.DatetimeIndex(stats._trades.EntryTime).tz_localize(None).to_numpy()
        exits = pd.DatetimeIndex(stats._trades.ExitTime).tz_localize(None).to_numpy()
        return list(zip(entries, exits, strict=True))

    return trades, float(stats["Equity Final [$]"]), len(stats._trades)


def vectorbt_run(candles: CandleArrays, strategy: str, decisions=None) -> Run:
    """vectorbt with its own indicators, or on given (entries, exits) decisions."""
    import vectorbt as vbt

    params = STRATEGIES[strategy]
    index = pd.DatetimeIndex(candles.time)
    close = pd.Series(candles.close, index=index)
    if decisions is not None:
        entries, exits = (pd.Series(values, index=index) for values in decisions)
    elif strategy == "sma_cross":
        fast = vbt.MA.run(close, params["fast"])
        slow = vbt.MA.run(close, params["slow"])
        entries, exits = fast.ma_crossed_above(slow), fast.ma_crossed_below(slow)
    else:
        indicator = vbt.RSI.run(close, params["period"], ewm=True)
        entries = indicator.rsi_crossed_above(params["oversold"])
        exits = indicator.rsi_crossed_below(params["overbought"])
    portfolio = vbt.Portfolio.from_signals(
        close,
        entries.shift(1, fill_value=False),
        exits.shift(1, fill_value=False),
        price=pd.Series(candles.open, index=index),
        fees=FEE,
        init_cash=CASH,
        freq=pd.Timedelta(candles.time[1] - candles.time[0]),
    )
    records = portfolio.trades.records
    closed = records[records["status"] == 1]

    def trades() -> Trades:
        times = candles.time
        return list(zip(times[closed["entry_idx"]], times[closed["exit_idx"]], strict=True))

    return trades, float(portfolio.final_value()), len(closed)


def vectorbt_on_our_decisions(candles: CandleArrays, strategy: str) -> Run:
    spec = StrategySpec.from_template(strategy, STRATEGIES[strategy])
    return vectorbt_run(candles, strategy, signals(spec, candles))


ENGINES: dict[str, Callable[[CandleArrays, str], Run]] = {
    "tradeloop": tradeloop_run,
    "backtesting.py": backtesting_py_run,
    "vectorbt": vectorbt_run,
}
PEERS_ON_REAL_DATA = {
    "backtesting.py": backtesting_py_run,
    "vectorbt": vectorbt_run,
    "vectorbt, our decisions": vectorbt_on_our_decisions,
}


def _first_difference(ours: Trades, theirs: Trades) -> str:
    for k, (a, b) in enumerate(zip(ours, theirs, strict=False)):
        if a != b:
            return f"trade {k}: ours {a[0]}..{a[1]}, theirs {b[0]}..{b[1]}"
    return f"{len(ours)} vs {len(theirs)} trades"


def _report_line(engine: str, trades: Trades, equity: float, verdict: str) -> None:
    print(
        f"  {engine:<24} {len(trades):>5} closed trades, final equity {equity:>16,.2f}  {verdict}"
    )


def compare_on_real_files() -> bool:
    """Print trade identity per engine; True when the CLI and backtesting.py match."""
    all_identical = True
    for name in ("BTC-USDT_1h.csv", "BTC-USD_1h.csv"):
        path = DATA / name
        candles = read_csv(path)
        for strategy in STRATEGIES:
            print(f"\n{name} ({len(candles):,} candles), {strategy}:")
            build, ours_equity, _ = tradeloop_run(candles, strategy)
            ours = build()
            results = {"manage.py backtest": cli_run(path, strategy)}
            for engine, run in PEERS_ON_REAL_DATA.items():
                build_theirs, equity, _ = run(candles, strategy)
                results[engine] = (build_theirs(), equity)
            _report_line("tradeloop", ours, ours_equity, "")
            for engine, (trades, equity) in results.items():
                same = trades == ours
                if engine in ("manage.py backtest", "backtesting.py"):
                    all_identical &= same
                verdict = (
                    "IDENTICAL trades" if same else "different, " + _first_difference(ours, trades)
                )
                _report_line(engine, trades, equity, verdict)
    return all_identical


def synthetic_candles(n: int, seed: int = 7) -> CandleArrays:
    rng = np.random.default_rng(seed)
    close = 20_000 * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
    open_ = np.concatenate(([close[0]], close[:-1]))
    spread = np.abs(rng.normal(0, 0.001, n))
    high = np.maximum(open_, close) * (1 + spread)
    low = np.minimum(open_, close) * (1 - spread)
    times = pd.date_range("2020-01-01", periods=n, freq="min").to_numpy(dtype="datetime64[ns]")
    return CandleArrays(times, open_, high, low, close, rng.uniform(1, 10, n))


class Timing(NamedTuple):
    wall: float
    cpu: float


def timed(run: Callable[[CandleArrays, str], Run], candles: CandleArrays, strategy: str) -> Timing:
    wall, cpu = time.perf_counter(), time.process_time()
    run(candles, strategy)
    return Timing(time.perf_counter() - wall, time.process_time() - cpu)


def best_of(timings: list[Timing]) -> Timing:
    return Timing(min(t.wall for t in timings), min(t.cpu for t in timings))


def time_engines(candles: CandleArrays, repeat: int) -> None:
    size = f"{len(candles):,}"
    print(
        f"\nSpeed on {size} synthetic 1m candles (cold = first call; warm = best of {repeat} "
        "runs taken in turns; wall-clock and CPU seconds):"
    )
    for strategy in STRATEGIES:
        counts, runs = {}, {engine: [] for engine in ENGINES}
        for engine, run in ENGINES.items():
            start = time.perf_counter()
            _, _, counts[engine] = run(candles, strategy)
            cold = time.perf_counter() - start
            print(f"  {strategy:<10} {engine:<15} cold {cold:7.3f}s")
        for _ in range(repeat):
            for engine, run in ENGINES.items():
                runs[engine].append(timed(run, candles, strategy))
        warm = {engine: best_of(timings) for engine, timings in runs.items()}
        for engine, best in warm.items():
            times = f"warm {best.wall:7.3f}s wall {best.cpu:7.3f}s cpu"
            print(f"  {strategy:<10} {engine:<15} {times}  {counts[engine]:>7,} trades")
        ours = warm["tradeloop"]
        for peer in ("backtesting.py", "vectorbt"):
            wall, cpu = warm[peer].wall / ours.wall, warm[peer].cpu / ours.cpu
            print(
                f"  {strategy:<10} tradeloop is {wall:6.1f}x faster than {peer} "
                f"(warm wall), {cpu:6.1f}x (warm cpu)"
            )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--candles", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")
    identical = compare_on_real_files()
    verdict = "YES" if identical else "NO"
    print(f"\ntrades identical to backtesting.py and the CLI on both real files: {verdict}")
    time_engines(synthetic_candles(args.candles), args.repeat)
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
