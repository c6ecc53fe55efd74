"""Script bots run in the backtest's sandbox: sdk.state persists per bot across ticks,
print lands in the bot log, and a script error or a breached limit fails that one bot."""

import pytest

from apps.bots.models import BotLog, BotOrder, BotRun
from apps.bots.services.lifecycle import bot_run_start
from apps.bots.tick import bot_tick_run
from tests.apps.bots.conftest import HOUR, START, replay_bot, script_version, template_version

COUNTER = (
    "def main(sdk, params):\n"
    "    sdk.state['ticks'] = sdk.state.get('ticks', 0) + 1\n"
    "    print('tick', sdk.state['ticks'], 'close', sdk.candles.close[-1])\n"
    "    sdk.log('seen', len(sdk.candles), 'candles')\n"
    "    if sdk.state['ticks'] == 2:\n"
    "        sdk.buy(amount=500)\n"
)
CRASH_ON_THIRD = (
    "def main(sdk, params):\n"
    "    sdk.state['n'] = sdk.state.get('n', 0) + 1\n"
    "    print('about to look', sdk.state['n'])\n"
    "    if sdk.state['n'] == 3:\n"
    "        return params['missing']\n"
)
LOOP = "def main(sdk, params):\n    x = 0\n    while True:\n        x = x + 1\n"


def test_sdk_state_persists_and_print_is_logged(alice, btc_hours):
    run = bot_run_start(bot=replay_bot(alice, script_version(alice, COUNTER)), acting_user=alice)
    for k in range(4):
        assert bot_tick_run(run_id=run.pk, candle_time=START + HOUR * k) == "done"
    run.refresh_from_db()
    assert run.memory == {"BTC/USDT": {"ticks": 4}}
    printed = list(
        BotLog.objects.filter(run=run, source="script")
        .order_by("id")
        .values_list("message", flat=True)
    )
    assert [line.split(" close ")[0] for line in printed] == [f"tick {n}" for n in (1, 2, 3, 4)]
    logged = BotLog.objects.filter(run=run, source="strategy").order_by("id").first()
    assert logged.message == "seen 1 candles"
    assert BotOrder.objects.get(run=run).candle_time == START + HOUR


def test_a_script_error_fails_that_bot_only(alice, btc_hours):
    broken = bot_run_start(
        bot=replay_bot(alice, script_version(alice, CRASH_ON_THIRD), name="Broken"),
        acting_user=alice,
    )
    healthy = bot_run_start(
        bot=replay_bot(alice, template_version(alice), name="Healthy"), acting_user=alice
    )
    outcomes = [bot_tick_run(run_id=broken.pk, candle_time=START + HOUR * k) for k in range(3)]
    assert outcomes == ["done", "done", "failed"]
    broken.refresh_from_db()
    assert broken.status == "FAILED"
    assert "runtime" in broken.last_error and "line 5" in broken.last_error
    assert broken.memory == {"BTC/USDT": {"n": 2}}  # the failed tick changed nothing
    assert BotLog.objects.filter(run=broken, message="about to look 3").exists()
    assert [bot_tick_run(run_id=healthy.pk, candle_time=START + HOUR * k) for k in range(3)] == [
        "done"
    ] * 3
    assert BotRun.objects.get(pk=healthy.pk).status == "RUNNING"


HOG = "def main(sdk, params):\n    blob = 'a' * (2 ** 31)\n    return len(blob)\n"


@pytest.mark.parametrize("source", [LOOP, HOG], ids=["cpu-or-wall", "memory"])
def test_a_sandbox_breach_fails_the_bot(alice, btc_hours, source, monkeypatch):
    from apps.bots import tick_trade
    from apps.engine.sandbox import SandboxLimits

    monkeypatch.setattr(
        tick_trade, "SCRIPT_LIMITS", SandboxLimits(cpu_seconds=1, wall_seconds=2, memory_mb=64)
    )
    run = bot_run_start(bot=replay_bot(alice, script_version(alice, source)), acting_user=alice)
    assert bot_tick_run(run_id=run.pk, candle_time=START) == "failed"
    run.refresh_from_db()
    assert run.status == "FAILED"
    kinds = ("script error (cpu)", "script error (timeout)", "script error (memory)")
    assert run.last_error.startswith(kinds), run.last_error
