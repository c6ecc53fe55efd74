"""REST API for backtests: create a task (same validation as the page), read its status and
results. Rates are fractions (0.001 = 0.1 %); amounts are decimal strings. Ranges are
checked by the service, so every refusal names its field as `pairs[1].leverage`."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.backtests.models import BacktestPair, BacktestTask, Side
from apps.backtests.selectors import (
    backtest_task_get_for_user,
    backtest_task_list_for_user,
    backtest_task_with_pairs,
)
from apps.backtests.services import BacktestInvalid, PairInput, backtest_task_create
from apps.common.api import invalid_response

FRACTION = {"max_digits": 12, "decimal_places": 8, "min_value": Decimal(0)}
RATE = {"max_digits": 12, "decimal_places": 8}
LEVERAGE = {"max_digits": 6, "decimal_places": 2}


@extend_schema_serializer(component_name="BacktestPairInput")
class PairInputSerializer(serializers.Serializer):
    symbol = serializers.CharField(max_length=64)
    timeframe = serializers.CharField(max_length=8)
    strategy_version = serializers.IntegerField(help_text="id of one of your strategy versions")
    initial_capital = serializers.DecimalField(
        max_digits=38, decimal_places=18, min_value=Decimal("0.00000001"), default=Decimal(10_000)
    )
    order_type = serializers.ChoiceField(
        choices=BacktestPair.OrderType.choices, default=BacktestPair.OrderType.MARKET
    )
    maker_fee = serializers.DecimalField(**FRACTION, default=Decimal("0.001"))
    taker_fee = serializers.DecimalField(**FRACTION, default=Decimal("0.001"))
    slippage = serializers.DecimalField(**FRACTION, default=Decimal(0))
    stop_loss = serializers.DecimalField(**FRACTION, required=False, allow_null=True)
    take_profit = serializers.DecimalField(**FRACTION, required=False, allow_null=True)
    trailing_stop = serializers.DecimalField(**FRACTION, required=False, allow_null=True)
    sizing = serializers.ChoiceField(
        choices=BacktestPair.Sizing.choices, default=BacktestPair.Sizing.ALL_IN
    )
    size_value = serializers.DecimalField(
        max_digits=38, decimal_places=18, min_value=Decimal(0), default=Decimal(1)
    )
    max_trades_per_day = serializers.IntegerField(min_value=1, required=False, allow_null=True)
    max_drawdown_stop = serializers.DecimalField(**FRACTION, required=False, allow_null=True)
    limit_offset = serializers.DecimalField(
        **FRACTION,
        default=Decimal(0),
        help_text="limit orders: the buy rests at the signal close x (1 - offset), the sell at "
        "close x (1 + offset), for one bar; below 0.5",
    )
    leverage = serializers.DecimalField(
        **LEVERAGE,
        default=Decimal(1),
        help_text="futures: notional = margin x leverage, 1 to 125; spot must leave it at 1",
    )
    direction = serializers.ChoiceField(
        choices=Side.choices,
        default=Side.LONG,
        help_text="futures: short sells on the entry signal; spot is long only",
    )
    funding_rate = serializers.DecimalField(
        **RATE,
        default=Decimal("0.0001"),
        help_text="futures: per 8 hours on the notional, paid by longs when positive; "
        "-0.01 to 0.01",
    )
    maintenance_margin = serializers.DecimalField(
        **FRACTION,
        default=Decimal("0.005"),
        help_text="futures: isolated-margin liquidation when the margin falls to this "
        "fraction of the notional; below 0.5",
    )

    def to_pair_input(self, data: dict[str, Any]) -> PairInput:
        values = dict(data)
        values["strategy_version_id"] = values.pop("strategy_version")
        return PairInput(**values)


@extend_schema_serializer(component_name="BacktestPair")
class PairOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    symbol = serializers.CharField()
    timeframe = serializers.CharField()
    strategy_version = serializers.IntegerField(source="strategy_version_id")
    initial_capital = serializers.DecimalField(max_digits=38, decimal_places=18)
    order_type = serializers.CharField()
    maker_fee = serializers.DecimalField(max_digits=12, decimal_places=8)
    taker_fee = serializers.DecimalField(max_digits=12, decimal_places=8)
    slippage = serializers.DecimalField(max_digits=12, decimal_places=8)
    stop_loss = serializers.DecimalField(max_digits=12, decimal_places=8, allow_null=True)
    take_profit = serializers.DecimalField(max_digits=12, decimal_places=8, allow_null=True)
    trailing_stop = serializers.DecimalField(max_digits=12, decimal_places=8, allow_null=True)
    sizing = serializers.CharField()
    size_value = serializers.DecimalField(max_digits=38, decimal_places=18)
    max_trades_per_day = serializers.IntegerField(allow_null=True)
    max_drawdown_stop = serializers.DecimalField(max_digits=12, decimal_places=8, allow_null=True)
    limit_offset = serializers.DecimalField(**RATE)
    leverage = serializers.DecimalField(**LEVERAGE)
    direction = serializers.CharField()
    funding_rate = serializers.DecimalField(**RATE)
    maintenance_margin = serializers.DecimalField(**RATE)
    status = serializers.CharField()
    metrics = serializers.SerializerMethodField()

    @extend_schema_field(serializers.JSONField(allow_null=True))
    def get_metrics(self, pair: BacktestPair) -> dict[str, Any] | None:
        result = getattr(pair, "result", None) if hasattr(pair, "result") else None
        return None if result is None else result.metrics


@extend_schema_serializer(component_name="BacktestTask")
class TaskOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    exchange = serializers.CharField()
    market_type = serializers.CharField()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    status = serializers.CharField()
    progress = serializers.IntegerField()
    error = serializers.CharField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    metrics = serializers.JSONField(allow_null=True, help_text="aggregate over all pairs")


@extend_schema_serializer(component_name="BacktestTaskDetail")
class TaskDetailOutputSerializer(TaskOutputSerializer):
    pairs = serializers.SerializerMethodField()

    @extend_schema_field(PairOutputSerializer(many=True))
    def get_pairs(self, task: BacktestTask) -> list[dict[str, Any]]:
        return PairOutputSerializer(backtest_task_with_pairs(task=task), many=True).data


class BacktestTaskListApi(APIView):
    """Your backtests (GET), or start one (POST): it is queued and runs on the worker."""

    @extend_schema_serializer(component_name="BacktestTaskCreateInput")
    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=120)
        exchange = serializers.CharField(max_length=32, default="binance")
        market_type = serializers.ChoiceField(
            choices=BacktestTask.MarketType.choices, default=BacktestTask.MarketType.SPOT
        )
        start = serializers.DateTimeField(help_text="UTC, inclusive")
        end = serializers.DateTimeField(help_text="UTC, exclusive")
        pairs = PairInputSerializer(many=True, allow_empty=False)

    OutputSerializer = TaskOutputSerializer

    @extend_schema(responses=OutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        tasks = backtest_task_list_for_user(user=request.user)
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(tasks, request, view=self)
        return paginator.get_paginated_response(self.OutputSerializer(page, many=True).data)

    @extend_schema(request=InputSerializer, responses={201: TaskDetailOutputSerializer})
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        pair_serializer = PairInputSerializer()
        try:
            task = backtest_task_create(
                owner=request.user,
                name=data["name"],
                exchange=data["exchange"],
                market_type=data["market_type"],
                start=data["start"],
                end=data["end"],
                pairs=[pair_serializer.to_pair_input(pair) for pair in data["pairs"]],
            )
        except BacktestInvalid as error:
            return invalid_response(error)
        return Response(TaskDetailOutputSerializer(task).data, status=status.HTTP_201_CREATED)


class BacktestTaskDetailApi(APIView):
    """One of your backtests: status, progress, aggregate and per-pair metrics."""

    @extend_schema(responses=TaskDetailOutputSerializer)
    def get(self, request: Request, task_id: int) -> Response:
        task = backtest_task_get_for_user(user=request.user, task_id=task_id)
        return Response(TaskDetailOutputSerializer(task).data)
