"""A run's risk JSON holds the engine's RiskState beside the tick's own trade starts."""

from decimal import Decimal

from apps.bots.engine_state import run_risk_state, run_risk_state_save
from apps.bots.models import BotRun
from apps.engine.risk import RiskState, Stage


def test_trade_starts_alone_read_as_a_fresh_state_and_survive_a_save() -> None:
    run = BotRun(risk_state={"trade_start_pnl": {"BTC/USDT": "0"}})
    assert run_risk_state(run) == RiskState()

    run_risk_state_save(run, RiskState(stage=Stage.REDUCING, peak_equity=Decimal(5)))

    assert run.risk_state["trade_start_pnl"] == {"BTC/USDT": "0"}
    assert run_risk_state(run).stage == Stage.REDUCING
    assert run_risk_state(run).peak_equity == Decimal(5)
