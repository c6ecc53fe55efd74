"""One owned sample per URL keyword argument, for the SEC-5 and SEC-2 walkers.

Each factory takes the owner and returns the value to put in the URL. A route whose
keyword argument is missing here fails tests/test_tenant_isolation.py until it is added.
"""

from collections.abc import Callable

from apps.accounts.services import api_token_create


def _strategy(owner) -> int:
    from apps.strategies.services import strategy_create

    strategy, _version = strategy_create(
        owner=owner, name="Sample strategy", kind="template", template="sma_cross"
    )
    return strategy.pk


def _strategy_version(owner) -> int:
    from apps.strategies.services import strategy_create

    _strategy, version = strategy_create(
        owner=owner, name="Sample version", kind="template", template="sma_cross"
    )
    return version.pk


def _backtest_pair(owner):
    from datetime import UTC, datetime

    from apps.backtests.models import BacktestPair, BacktestTask
    from apps.strategies.services import strategy_create

    _strategy, version = strategy_create(
        owner=owner, name="Sample backtest strategy", kind="template", template="sma_cross"
    )
    task = BacktestTask.objects.create(
        owner=owner,
        name="Sample backtest",
        exchange="binance",
        start=datetime(2021, 1, 1, tzinfo=UTC),
        end=datetime(2021, 2, 1, tzinfo=UTC),
    )
    return BacktestPair.objects.create(
        task=task,
        position=0,
        symbol="BTC/USDT",
        timeframe="1h",
        initial_capital=10_000,
        strategy_version=version,
    )


def _backtest_task(owner) -> int:
    return _backtest_pair(owner).task_id


def _backtest_pair_id(owner) -> int:
    return _backtest_pair(owner).pk


def _exchange_account(owner) -> int:
    from apps.exchanges.services import exchange_account_create

    account = exchange_account_create(owner=owner, exchange="binance", label="Sample", mode="paper")
    return account.pk


def _api_token(owner) -> int:
    token, _raw = api_token_create(user=owner, name="sample")
    return token.pk


def _candle_download(owner) -> int:
    from datetime import UTC, datetime

    from apps.market.models import CandleDownload

    download = CandleDownload.objects.create(
        owner=owner,
        exchange="binance",
        symbol="BTC/USDT",
        timeframe="1h",
        start=datetime(2018, 1, 1, tzinfo=UTC),
        end=datetime(2018, 2, 1, tzinfo=UTC),
        status=CandleDownload.Status.FAILED,
        error="sample",
    )
    return download.pk


def _optimization(owner) -> int:
    from datetime import UTC, datetime

    from apps.optimizations.models import OptimizationTask
    from apps.strategies.services import strategy_create

    _strategy, version = strategy_create(
        owner=owner, name="Sample optimised strategy", kind="template", template="sma_cross"
    )
    task = OptimizationTask.objects.create(
        owner=owner,
        strategy_version=version,
        exchange="binance",
        symbol="BTC/USDT",
        timeframe="1h",
        start=datetime(2021, 1, 1, tzinfo=UTC),
        end=datetime(2021, 2, 1, tzinfo=UTC),
        space={"fast": [5, 10]},
        combinations=[{"fast": 5, "slow": 30}, {"fast": 10, "slow": 30}],
        status=OptimizationTask.Status.RUNNING,
    )
    return task.pk


def _bot(owner) -> int:
    from apps.bots.services.create import bot_create
    from apps.exchanges.services import exchange_account_create
    from apps.strategies.services import strategy_create

    _strategy, version = strategy_create(
        owner=owner, name="Sample bot strategy", kind="template", template="sma_cross"
    )
    account = exchange_account_create(
        owner=owner, exchange="binance", label="Sample bot account", mode="paper"
    )
    bot = bot_create(
        owner=owner,
        name="Sample bot",
        strategy_version_id=version.pk,
        account_id=account.pk,
        symbols=["BTC/USDT"],
    )
    return bot.pk


def _signal_bot(owner) -> int:
    from apps.exchanges.services import exchange_account_create
    from apps.signals.services import SignalBotInput, signal_bot_create

    account = exchange_account_create(
        owner=owner, exchange="binance", label="Signals", mode="paper"
    )
    bot, _secrets = signal_bot_create(
        owner=owner,
        data=SignalBotInput(name="Sample signals", account_id=account.pk, symbols=["BTC/USDT"]),
    )
    return bot.pk


# URL keyword arguments that do not name an owned object, with the reason.
NOT_OBJECT_SCOPED = {
    "uidb64": "password-reset link: a signed token, not an owned object",
    "token": "password-reset link: a signed token, not an owned object",
    "format": "DRF format suffix",
    "hook_token": "webhook URL secret: authenticates the sender, owned by no session user",
}

OWNED_SAMPLES: dict[str, Callable] = {
    "token_id": _api_token,
    "account_id": _exchange_account,
    "strategy_id": _strategy,
    "version_id": _strategy_version,
    "task_id": _backtest_task,
    "pair_id": _backtest_pair_id,
    "download_id": _candle_download,
    "optimization_id": _optimization,
    "bot_id": _bot,
    "signal_bot_id": _signal_bot,
}
