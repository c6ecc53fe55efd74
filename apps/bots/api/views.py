"""REST API for bots: create (same validation as the page), read, and the lifecycle
actions. Amounts are decimal strings; risk overrides are fractions (0.0025 = 0.25 %).
A refusal names its field (`risk_overrides.stop_loss`); the per-user bot ceiling is a 429;
an action the bot's state does not allow (pausing a stopped bot) is a 409."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
)
from rest_framework import serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.bots.actions import bot_action_run
from apps.bots.models import Bot, BotFill, BotLog, BotOrder, BotRun, RiskProfileName
from apps.bots.selectors import (
    bot_fill_list,
    bot_get_for_user,
    bot_list_for_user,
    bot_log_list,
    bot_order_list,
    bot_run_latest,
)
from apps.bots.services.create import RELATIONS, SETTINGS, BotQuotaExceeded, bot_create
from apps.common.api import invalid_response
from apps.common.errors import ApplicationError, InputInvalid

AMOUNT = {"max_digits": 38, "decimal_places": 18}


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()


@extend_schema_serializer(component_name="BotRun")
class RunOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = BotRun
        fields = (
            "id",
            "status",
            "paused_at",
            "started_at",
            "ended_at",
            "last_candle_at",
            "last_tick_at",
            "ticks_done",
            "ticks_dropped",
            "last_error",
            "equity_start",
            "equity_last",
            "realized_pnl",
            "risk_state",
        )


@extend_schema_serializer(component_name="Bot")
class BotOutputSerializer(serializers.ModelSerializer):
    strategy_version_id = serializers.IntegerField(allow_null=True)
    account_id = serializers.IntegerField()
    run = serializers.SerializerMethodField(help_text="the latest run, null before the first")

    class Meta:
        model = Bot
        # Every setting bot_create takes (relations as their ids), then what the bot has.
        fields = (
            "id",
            *(name for name in SETTINGS if name not in RELATIONS),
            "strategy_version_id",
            "account_id",
            "created_at",
            "run",
        )

    @extend_schema_field(RunOutputSerializer(allow_null=True))
    def get_run(self, bot: Bot) -> dict[str, Any] | None:
        run = bot_run_latest(bot=bot)
        return None if run is None else RunOutputSerializer(run).data


@extend_schema_serializer(component_name="BotOrder")
class OrderOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = BotOrder
        fields = (
            "id",
            "run_id",
            "client_order_id",
            "symbol",
            "side",
            "type",
            "qty",
            "quote_qty",
            "limit_price",
            "stop_price",
            "status",
            "filled_qty",
            "average_price",
            "reason",
            "message",
            "candle_time",
            "created_at",
        )


@extend_schema_serializer(component_name="BotFill")
class FillOutputSerializer(serializers.ModelSerializer):
    client_order_id = serializers.CharField(source="order.client_order_id")

    class Meta:
        model = BotFill
        fields = (
            "id",
            "fill_id",
            "client_order_id",
            "symbol",
            "side",
            "qty",
            "price",
            "fee",
            "fee_asset",
            "liquidity",
            "executed_at",
        )


@extend_schema_serializer(component_name="BotLog")
class LogOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = BotLog
        fields = ("id", "run_id", "created_at", "candle_time", "level", "source", "message")


@extend_schema_serializer(component_name="BotCreateInput")
class BotInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    strategy_version_id = serializers.IntegerField(help_text="one of your strategy versions")
    account_id = serializers.IntegerField(help_text="one of your paper exchange accounts")
    symbols = serializers.ListField(
        child=serializers.CharField(max_length=32), allow_empty=False, help_text="BASE/QUOTE"
    )
    timeframe = serializers.CharField(max_length=8, default="1h")
    params = serializers.DictField(default=dict, help_text="strategy parameter overrides")
    risk_profile = serializers.ChoiceField(
        choices=RiskProfileName.choices, default=RiskProfileName.CONSERVATIVE
    )
    risk_overrides = serializers.DictField(
        default=dict,
        help_text="profile values to change, each at most the profile's cap, "
        'e.g. {"stop_loss": "0.03", "sizing": "percent"}',
    )
    capital_limit = serializers.DecimalField(**AMOUNT, required=False, allow_null=True)
    leverage = serializers.DecimalField(max_digits=6, decimal_places=2, default=Decimal(1))
    max_trades_per_day = serializers.IntegerField(min_value=1, required=False, allow_null=True)
    assume_position = serializers.BooleanField(default=False)
    close_on_stop = serializers.BooleanField(default=True)
    cooldown_after_losses = serializers.IntegerField(min_value=1, required=False, allow_null=True)
    cooldown_bars = serializers.IntegerField(min_value=0, default=0)
    feed = serializers.ChoiceField(choices=Bot.Feed.choices, default=Bot.Feed.LIVE)
    market_exchange = serializers.CharField(max_length=50, default="", allow_blank=True)
    replay_start = serializers.DateTimeField(required=False, allow_null=True)
    replay_seconds_per_candle = serializers.DecimalField(
        max_digits=8, decimal_places=3, default=Decimal(2)
    )


def _paginated(request: Request, view: APIView, rows: Any, serializer: Any) -> Response:
    paginator = PageNumberPagination()
    page = paginator.paginate_queryset(rows, request, view=view)
    return paginator.get_paginated_response(serializer(page, many=True).data)


class BotListApi(APIView):
    """Your bots (GET), or create one (POST; it does not start until you start it)."""

    @extend_schema(responses=BotOutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        return _paginated(request, self, bot_list_for_user(user=request.user), BotOutputSerializer)

    @extend_schema(
        request=BotInputSerializer,
        responses={
            201: BotOutputSerializer,
            400: OpenApiResponse(description="bad input: each field path with its messages"),
            429: OpenApiResponse(ErrorSerializer, description="your bot limit is reached"),
        },
    )
    def post(self, request: Request) -> Response:
        serializer = BotInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            bot = bot_create(owner=request.user, **serializer.validated_data)
        except InputInvalid as error:
            return invalid_response(error)
        except BotQuotaExceeded as error:
            return Response({"detail": error.message}, status=status.HTTP_429_TOO_MANY_REQUESTS)
        return Response(BotOutputSerializer(bot).data, status=status.HTTP_201_CREATED)


class BotDetailApi(APIView):
    """One of your bots with its latest run."""

    @extend_schema(responses=BotOutputSerializer)
    def get(self, request: Request, bot_id: int) -> Response:
        return Response(
            BotOutputSerializer(bot_get_for_user(user=request.user, bot_id=bot_id)).data
        )


class StopInputSerializer(serializers.Serializer):
    close_positions = serializers.BooleanField(
        required=False, help_text="close the bot's positions; default: the bot's close_on_stop"
    )


class BotActionApi(APIView):
    """start, pause, resume, stop (with `close_positions`), kill, or risk-resume a bot;
    answers the bot with its latest run, or 409 when its state does not allow the action."""

    action_name = ""

    @extend_schema(
        request=StopInputSerializer,
        responses={
            200: BotOutputSerializer,
            409: OpenApiResponse(ErrorSerializer, description="not allowed in this state"),
        },
    )
    def post(self, request: Request, bot_id: int) -> Response:
        bot = bot_get_for_user(user=request.user, bot_id=bot_id)
        serializer = StopInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            bot_action_run(
                bot=bot,
                user=request.user,
                action=self.action_name,
                close_positions=serializer.validated_data.get("close_positions"),
            )
        except ApplicationError as error:
            return Response({"detail": error.message}, status=status.HTTP_409_CONFLICT)
        return Response(BotOutputSerializer(bot).data)


class BotOrderListApi(APIView):
    """Every order the bot issued, newest first, with its reason and status."""

    @extend_schema(responses=OrderOutputSerializer(many=True))
    def get(self, request: Request, bot_id: int) -> Response:
        bot = bot_get_for_user(user=request.user, bot_id=bot_id)
        return _paginated(request, self, bot_order_list(bot=bot), OrderOutputSerializer)


class BotFillListApi(APIView):
    """The bot's fills, oldest first."""

    @extend_schema(responses=FillOutputSerializer(many=True))
    def get(self, request: Request, bot_id: int) -> Response:
        bot = bot_get_for_user(user=request.user, bot_id=bot_id)
        return _paginated(request, self, bot_fill_list(bot=bot), FillOutputSerializer)


class BotLogListApi(APIView):
    """The bot's log, newest first: engine messages, risk rejections, a script's print."""

    @extend_schema(responses=LogOutputSerializer(many=True))
    def get(self, request: Request, bot_id: int) -> Response:
        bot = bot_get_for_user(user=request.user, bot_id=bot_id)
        return _paginated(request, self, bot_log_list(bot=bot), LogOutputSerializer)
