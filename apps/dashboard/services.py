"""Writes that span apps: the demo data `make run` gives a new installation."""

from decimal import Decimal

from django.db import transaction

from apps.accounts.models import User
from apps.audit.services import audit_record
from apps.exchanges.models import ExchangeAccount
from apps.exchanges.services import exchange_account_create
from apps.strategies.models import Strategy
from apps.strategies.services import strategy_create

# A trend-filtered RSI dip: the demo's example of a nested condition tree.
RSI_DIP_ENTRY = {
    "all": [
        {
            "left": {"indicator": "rsi", "params": {"period": 14}},
            "op": "crosses_above",
            "right": 30,
        },
        {
            "any": [
                {
                    "left": {"field": "close"},
                    "op": ">",
                    "right": {"indicator": "ema", "params": {"period": 200}},
                },
                {"left": {"indicator": "adx", "params": {"period": 14}}, "op": "<", "right": 20},
            ]
        },
    ]
}
RSI_DIP_EXIT = {
    "any": [
        {
            "left": {"indicator": "rsi", "params": {"period": 14}},
            "op": "crosses_below",
            "right": 70,
        },
        {
            "left": {"field": "close"},
            "op": "<",
            "right": {
                "indicator": "donchian",
                "output": "lower",
                "params": {"period": 20},
                "shift": 1,
            },
        },
    ]
}


def demo_user_ensure(*, email: str, password: str) -> User:
    with transaction.atomic():
        user = User.objects.filter(email=email).first()
        if user is None:
            user = User.objects.create_user(email=email, password=password, display_name="Demo")
            audit_record(
                event_type="user.demo_created",
                actor=None,
                owner=user,
                target=user,
                actor_label="seed_demo",
            )
    return user


def demo_data_seed(*, user: User) -> list[str]:
    """Give the demo user a paper account and two strategies, once; return what was added."""
    added = []
    if not ExchangeAccount.objects.filter(owner=user).exists():
        exchange_account_create(
            owner=user,
            exchange="binance",
            label="Demo paper",
            mode="paper",
            initial_balances={"USDT": Decimal("10000")},
        )
        added.append("a Binance paper account with 10,000 USDT")
    if not Strategy.objects.filter(owner=user).exists():
        strategy_create(
            owner=user,
            name="SMA 10/30 cross",
            kind="template",
            template="sma_cross",
            params={"fast": 10, "slow": 30},
            description="The classic moving-average cross on hourly candles.",
        )
        strategy_create(
            owner=user,
            name="RSI dip with trend filter",
            kind="conditions",
            entry=RSI_DIP_ENTRY,
            exit=RSI_DIP_EXIT,
            description=(
                "Buys RSI recoveries above the 200 EMA or in quiet markets; "
                "exits overbought or on a breakdown."
            ),
        )
        added.append("two strategies (a template and a condition tree)")
    return added
