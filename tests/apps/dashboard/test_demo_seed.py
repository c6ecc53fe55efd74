from django.core.management import call_command

from apps.accounts.models import User
from apps.audit.selectors import audit_chain_verify
from apps.engine.backtest import run_backtest
from apps.engine.candles import read_csv
from apps.engine.simulator import ExecutionConfig
from apps.exchanges.models import ExchangeAccount
from apps.strategies.models import Strategy
from tests.apps.backtests.test_backtest_command import DATA


def test_seed_demo_creates_a_usable_demo_once(db, capsys, settings):
    call_command("seed_demo")
    first = capsys.readouterr().out
    call_command("seed_demo")
    second = capsys.readouterr().out

    user = User.objects.get(email=settings.DEMO_USER_EMAIL)
    assert user.check_password(settings.DEMO_USER_PASSWORD)
    assert settings.DEMO_USER_PASSWORD in first and "demo data added" in first
    assert "demo data added" not in second  # idempotent: nothing twice
    account = ExchangeAccount.objects.get(owner=user)
    assert account.mode == "paper"
    assert {b.asset: b.amount for b in account.paper_balances.all()} == {"USDT": 10000}
    strategies = Strategy.objects.filter(owner=user)
    assert strategies.count() == 2
    assert audit_chain_verify().ok


def test_the_demo_strategies_trade_on_the_shipped_candles(db, settings):
    call_command("seed_demo")
    candles = read_csv(DATA / "BTC-USDT_1h.csv")
    for strategy in Strategy.objects.filter(owner__email=settings.DEMO_USER_EMAIL):
        version = strategy.versions.order_by("-number").first()
        report = run_backtest(version.engine_spec(), candles, ExecutionConfig(fee=0.001))
        assert report.metrics.trade_count > 10, strategy.name
