"""REST API for optimisations: create one (the same validation as the page), list them, read
one with its ranked results, heatmap and walk-forward windows, and cancel it. Rates are
fractions (0.001 = 0.1 %); amounts are decimal strings."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
)
from rest_framework import serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.backtests.models import BacktestPair
from apps.common.api import invalid_response
from apps.engine.optimize import SCORE_METRICS, OptimizationError
from apps.optimizations.models import OptimizationTask
from apps.optimizations.selectors import (
    heatmap_axes,
    optimization_get_for_user,
    optimization_heatmap,
    optimization_list_for_user,
    optimization_rows,
    optimization_window,
)
from apps.optimizations.services import (
    OptimizationInput,
    OptimizationInvalid,
    optimization_task_cancel,
    optimization_task_create,
)

FRACTION = {"max_digits": 12, "decimal_places": 8, "min_value": Decimal(0)}
AMOUNT = {"max_digits": 38, "decimal_places": 18}
MAX_ROWS = 500


@extend_schema_serializer(component_name="OptimizationRow")
class RowOutputSerializer(serializers.Serializer):
    number = serializers.IntegerField(help_text="job number; POST it to adopt the parameters")
    window = serializers.IntegerField(allow_null=True, help_text="walk-forward window")
    params = serializers.JSONField()
    score = serializers.FloatField(allow_null=True, help_text="the ranked metric's value")
    metrics = serializers.JSONField()


@extend_schema_serializer(component_name="OptimizationTask")
class TaskOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    strategy_version = serializers.IntegerField(source="strategy_version_id")
    exchange = serializers.CharField()
    symbol = serializers.CharField()
    timeframe = serializers.CharField()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    method = serializers.CharField()
    space = serializers.JSONField()
    metric = serializers.CharField()
    samples = serializers.IntegerField(allow_null=True)
    seed = serializers.IntegerField(allow_null=True)
    in_sample = serializers.IntegerField(allow_null=True)
    out_of_sample = serializers.IntegerField(allow_null=True)
    step = serializers.IntegerField(allow_null=True)
    anchored = serializers.BooleanField()
    overfit_threshold = serializers.DecimalField(max_digits=4, decimal_places=3)
    initial_capital = serializers.DecimalField(**AMOUNT)
    taker_fee = serializers.DecimalField(max_digits=12, decimal_places=8)
    slippage = serializers.DecimalField(max_digits=12, decimal_places=8)
    stop_loss = serializers.DecimalField(max_digits=12, decimal_places=8, allow_null=True)
    take_profit = serializers.DecimalField(max_digits=12, decimal_places=8, allow_null=True)
    trailing_stop = serializers.DecimalField(max_digits=12, decimal_places=8, allow_null=True)
    sizing = serializers.CharField()
    size_value = serializers.DecimalField(**AMOUNT)
    max_trades_per_day = serializers.IntegerField(allow_null=True)
    max_drawdown_stop = serializers.DecimalField(max_digits=12, decimal_places=8, allow_null=True)
    status = serializers.CharField()
    progress = serializers.IntegerField()
    error = serializers.CharField()
    job_count = serializers.IntegerField(help_text="backtests in the plan")
    chunk_count = serializers.IntegerField()
    chunks_done = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    summary = serializers.JSONField(
        allow_null=True,
        help_text="when done: the best row (grid, random), or the walk-forward windows with "
        "in-sample and out-of-sample scores, the efficiency and the overfit flag",
    )


@extend_schema_serializer(component_name="OptimizationHeatmap")
class HeatmapOutputSerializer(serializers.Serializer):
    x = serializers.CharField()
    y = serializers.CharField()
    x_values = serializers.ListField(child=serializers.FloatField())
    y_values = serializers.ListField(child=serializers.FloatField())
    scores = serializers.ListField(
        child=serializers.ListField(child=serializers.FloatField(allow_null=True)),
        help_text="scores[i][j] is the best score for y_values[i] and x_values[j]",
    )


class OptimizationListApi(APIView):
    """Your optimisations (GET), or start one (POST): it is planned, queued and run by the
    worker in chunks."""

    @extend_schema_serializer(component_name="OptimizationCreateInput")
    class InputSerializer(serializers.Serializer):
        strategy_version = serializers.IntegerField(help_text="id of one of your template versions")
        exchange = serializers.CharField(max_length=32, default="binance")
        symbol = serializers.CharField(max_length=64)
        timeframe = serializers.CharField(max_length=8)
        start = serializers.DateTimeField(help_text="UTC, inclusive")
        end = serializers.DateTimeField(help_text="UTC, exclusive")
        method = serializers.ChoiceField(
            choices=OptimizationTask.Method.choices, default=OptimizationTask.Method.GRID
        )
        space = serializers.DictField(
            help_text="parameter -> a list of values, {min, max, step}, or (random search) "
            "{random: int|uniform, min, max}; other parameters keep the version's values"
        )
        metric = serializers.ChoiceField(choices=SCORE_METRICS, default="sharpe")
        samples = serializers.IntegerField(min_value=1, required=False, allow_null=True)
        seed = serializers.IntegerField(min_value=0, required=False, allow_null=True)
        in_sample = serializers.IntegerField(min_value=2, required=False, allow_null=True)
        out_of_sample = serializers.IntegerField(min_value=2, required=False, allow_null=True)
        step = serializers.IntegerField(min_value=1, required=False, allow_null=True)
        anchored = serializers.BooleanField(default=False)
        overfit_threshold = serializers.DecimalField(
            max_digits=4, decimal_places=3, default=Decimal("0.5")
        )
        initial_capital = serializers.DecimalField(
            **AMOUNT, min_value=Decimal("0.00000001"), default=Decimal(10_000)
        )
        taker_fee = serializers.DecimalField(**FRACTION, default=Decimal("0.001"))
        slippage = serializers.DecimalField(**FRACTION, default=Decimal(0))
        stop_loss = serializers.DecimalField(**FRACTION, required=False, allow_null=True)
        take_profit = serializers.DecimalField(**FRACTION, required=False, allow_null=True)
        trailing_stop = serializers.DecimalField(**FRACTION, required=False, allow_null=True)
        sizing = serializers.ChoiceField(
            choices=BacktestPair.Sizing.choices, default=BacktestPair.Sizing.ALL_IN
        )
        size_value = serializers.DecimalField(**AMOUNT, min_value=Decimal(0), default=Decimal(1))
        max_trades_per_day = serializers.IntegerField(min_value=1, required=False, allow_null=True)
        max_drawdown_stop = serializers.DecimalField(**FRACTION, required=False, allow_null=True)

    @extend_schema(responses=TaskOutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        tasks = optimization_list_for_user(user=request.user)
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(tasks, request, view=self)
        return paginator.get_paginated_response(TaskOutputSerializer(page, many=True).data)

    @extend_schema(request=InputSerializer, responses={201: TaskOutputSerializer})
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        values = dict(serializer.validated_data)
        values["strategy_version_id"] = values.pop("strategy_version")
        try:
            task = optimization_task_create(owner=request.user, data=OptimizationInput(**values))
        except OptimizationInvalid as error:
            return invalid_response(error)
        return Response(TaskOutputSerializer(task).data, status=status.HTTP_201_CREATED)


@extend_schema_serializer(component_name="OptimizationTaskDetail")
class TaskDetailOutputSerializer(TaskOutputSerializer):
    rows = serializers.SerializerMethodField()
    heatmap = serializers.SerializerMethodField()

    @extend_schema_field(RowOutputSerializer(many=True))
    def get_rows(self, task: OptimizationTask) -> list[dict[str, Any]]:
        """The best rows first (one walk-forward window's in-sample rows)."""
        if task.status != OptimizationTask.Status.DONE:
            return []
        limit, window = self.context["limit"], self.context["window"]
        rows = optimization_rows(task=task, window=window)[:limit]
        return RowOutputSerializer(rows, many=True).data

    @extend_schema_field(HeatmapOutputSerializer(allow_null=True))
    def get_heatmap(self, task: OptimizationTask) -> dict[str, Any] | None:
        """Best score per cell over the first two varied parameters (or ?x=&y=)."""
        if task.status != OptimizationTask.Status.DONE or len(task.varied) < 2:
            return None
        x, y = heatmap_axes(task=task, x=self.context["x"], y=self.context["y"])
        try:
            view = optimization_heatmap(task=task, x=x, y=y, window=self.context["window"])
        except OptimizationError as exc:
            raise serializers.ValidationError({exc.field or "x": [str(exc)]}) from exc
        return HeatmapOutputSerializer(view.heatmap).data


def _int_param(request: Request, name: str) -> int | None:
    value = request.query_params.get(name, "")
    return int(value) if value.isdigit() else None


class OptimizationDetailApi(APIView):
    """One of your optimisations: status, progress, and when done the ranked rows, a heatmap
    and (walk-forward) the windows with the overfitting verdict."""

    @extend_schema(
        parameters=[
            OpenApiParameter("limit", int, description=f"rows to return, 1..{MAX_ROWS}"),
            OpenApiParameter("window", int, description="walk-forward window (default: last)"),
            OpenApiParameter("x", str, description="heatmap x parameter"),
            OpenApiParameter("y", str, description="heatmap y parameter"),
        ],
        responses=TaskDetailOutputSerializer,
    )
    def get(self, request: Request, optimization_id: int) -> Response:
        task = optimization_get_for_user(user=request.user, optimization_id=optimization_id)
        context = {
            "limit": min(MAX_ROWS, max(1, _int_param(request, "limit") or 50)),
            "window": optimization_window(task=task, wanted=request.query_params.get("window")),
            "x": request.query_params.get("x"),
            "y": request.query_params.get("y"),
        }
        return Response(TaskDetailOutputSerializer(task, context=context).data)


class OptimizationCancelApi(APIView):
    """Cancel a queued or running optimisation; a finished one is returned unchanged."""

    @extend_schema(request=None, responses=TaskOutputSerializer)
    def post(self, request: Request, optimization_id: int) -> Response:
        task = optimization_get_for_user(user=request.user, optimization_id=optimization_id)
        optimization_task_cancel(task=task, acting_user=request.user)
        task.refresh_from_db()
        return Response(TaskOutputSerializer(task).data)
