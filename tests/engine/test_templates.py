from pathlib import Path

import pytest

from apps.engine.backtest import StrategySpec, StrategySpecError, run_backtest
from apps.engine.candles import read_csv
from apps.engine.simulator import ExecutionConfig
from apps.engine.templates import TEMPLATES, TemplateError, template_get

DATA = Path(__file__).resolve().parents[2] / "data" / "candles"
REQUIRED = {
    "macd",
    "rsi_swing",
    "sma_cross",
    "ema_cross",
    "bollinger_reversion",
    "donchian_breakout",
    "scalping",
    "grid",
    "dca",
}


def test_every_template_the_product_promises_exists_with_a_description():
    assert set(TEMPLATES) >= REQUIRED
    for template in TEMPLATES.values():
        assert template.description and template.when_it_works
        for param in template.params:
            assert param.minimum <= param.default <= param.maximum, (template.name, param.name)


@pytest.mark.parametrize("name", sorted(n for n, t in TEMPLATES.items() if t.kind == "conditions"))
def test_each_condition_template_trades_on_real_candles(name):
    candles = read_csv(DATA / ("BTC-USDT_5m.csv" if name == "scalping" else "BTC-USDT_1h.csv"))
    report = run_backtest(StrategySpec.from_template(name), candles, ExecutionConfig(fee=0.001))
    assert report.metrics.trade_count > 5
    assert report.metrics.final_equity == pytest.approx(report.equity[-1])


@pytest.mark.parametrize(
    ("name", "params", "field"),
    [
        ("sma_cross", {"fast": 30, "slow": 10}, "fast"),
        ("sma_cross", {"fats": 3}, "fats"),
        ("rsi_swing", {"period": 2.5}, "period"),
        ("rsi_swing", {"oversold": 80, "overbought": 70}, "oversold"),
        ("bollinger_reversion", {"num_std": 50}, "num_std"),
        ("macd", {"signal": "9"}, "signal"),
    ],
)
def test_bad_parameters_are_refused_naming_the_parameter(name, params, field):
    with pytest.raises(StrategySpecError) as caught:
        StrategySpec.from_template(name, params)
    assert caught.value.field == field


def test_an_unknown_template_lists_the_known_ones():
    with pytest.raises(TemplateError, match="sma_cross"):
        template_get("smacross")
