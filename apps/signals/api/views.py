"""REST API for signal bots: list and create them, rotate a webhook token, read the alert
history. Throttled per API token (per session user without one)."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from apps.bots.models import Bot, RiskProfileName
from apps.bots.services.create import BotQuotaExceeded
from apps.common.api import invalid_response
from apps.common.errors import InputInvalid
from apps.signals.models import SizeMode, WebhookEvent
from apps.signals.selectors import (
    signal_bot_get_for_user,
    signal_bot_list_for_user,
    webhook_events_for_bot,
)
from apps.signals.services import (
    Secrets,
    SignalBotInput,
    signal_bot_create,
    signal_source_rotate,
)
from apps.signals.views import hook_url


class SignalsTokenThrottle(SimpleRateThrottle):
    """Counts per API token (the Authorization header's hash), else per user."""

    scope = "signals"
    rate = "120/min"

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if header:
            ident = "t" + hashlib.sha256(header.encode()).hexdigest()[:32]
        elif request.user and request.user.is_authenticated:
            ident = f"u{request.user.pk}"
        else:
            ident = self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}


@extend_schema_serializer(component_name="SignalBot")
class SignalBotSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    account = serializers.IntegerField(source="account_id")
    symbols = serializers.ListField(child=serializers.CharField())
    risk_profile = serializers.CharField()
    size_mode = serializers.CharField(source="signal_source.size_mode")
    size_value = serializers.DecimalField(
        source="signal_source.size_value", max_digits=38, decimal_places=18, allow_null=True
    )
    ip_allowlist = serializers.ListField(
        source="signal_source.ip_allowlist", child=serializers.CharField()
    )
    token_rotated_at = serializers.DateTimeField(source="signal_source.token_rotated_at")


@extend_schema_serializer(component_name="SignalSecrets")
class SecretsSerializer(serializers.Serializer):
    webhook_url = serializers.CharField(help_text="shown once")
    passphrase = serializers.CharField(help_text="shown once; empty when unchanged")


@extend_schema_serializer(component_name="WebhookEvent")
class WebhookEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookEvent
        fields = (
            "id",
            "status",
            "reason",
            "field",
            "http_status",
            "source_ip",
            "action",
            "symbol",
            "size_mode",
            "size",
            "price",
            "alert_time",
            "duplicates",
            "received_at",
            "validated_at",
            "risk_at",
            "sent_at",
            "latency_ms",
            "execution",
            "execution_reason",
            "order",
        )


def _secrets(request: Request, secrets: Secrets) -> dict[str, str]:
    return {"webhook_url": hook_url(request, secrets.token), "passphrase": secrets.passphrase}


class SignalBotListApi(APIView):
    throttle_classes = [SignalsTokenThrottle]

    @extend_schema_serializer(component_name="SignalBotCreateInput")
    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=100)
        account = serializers.IntegerField(help_text="id of one of your paper accounts")
        symbols = serializers.ListField(child=serializers.CharField(max_length=64), min_length=1)
        risk_profile = serializers.ChoiceField(
            choices=RiskProfileName.choices, default=RiskProfileName.CONSERVATIVE
        )
        risk_overrides = serializers.DictField(required=False, default=dict)
        size_mode = serializers.ChoiceField(choices=SizeMode.choices, default=SizeMode.QUOTE)
        size_value = serializers.DecimalField(
            max_digits=38, decimal_places=18, required=False, allow_null=True, default=Decimal(100)
        )
        passphrase = serializers.CharField(required=False, default="", max_length=200)
        ip_allowlist = serializers.ListField(
            child=serializers.IPAddressField(), required=False, default=list
        )

    @extend_schema(responses=SignalBotSerializer(many=True))
    def get(self, request: Request) -> Response:
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(signal_bot_list_for_user(user=request.user), request)
        return paginator.get_paginated_response(SignalBotSerializer(page, many=True).data)

    @extend_schema(
        request=InputSerializer,
        responses={
            201: SecretsSerializer,
            400: OpenApiResponse(description="bad input: each field path with its messages"),
            429: OpenApiResponse(description="your bot limit is reached"),
        },
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            bot, secrets = signal_bot_create(
                owner=request.user,
                data=SignalBotInput(
                    name=data["name"],
                    account_id=data["account"],
                    symbols=data["symbols"],
                    risk_profile=data["risk_profile"],
                    risk_overrides=data["risk_overrides"],
                    size_mode=data["size_mode"],
                    size_value=data["size_value"],
                    passphrase=data["passphrase"],
                    ip_allowlist=tuple(data["ip_allowlist"]),
                ),
            )
        except InputInvalid as error:
            return invalid_response(error)
        except BotQuotaExceeded as error:
            return Response({"detail": error.message}, status=status.HTTP_429_TOO_MANY_REQUESTS)
        body = {"bot": SignalBotSerializer(bot).data, **_secrets(request, secrets)}
        return Response(body, status=status.HTTP_201_CREATED)


class SignalBotRotateApi(APIView):
    throttle_classes = [SignalsTokenThrottle]

    @extend_schema(request=None, responses=SecretsSerializer)
    def post(self, request: Request, signal_bot_id: int) -> Response:
        bot: Bot = signal_bot_get_for_user(user=request.user, bot_id=signal_bot_id)
        passphrase = str(request.query_params.get("passphrase", "")) in ("1", "true")
        secrets = signal_source_rotate(
            source=bot.signal_source, actor=request.user, passphrase=passphrase
        )
        return Response(_secrets(request, secrets))


class WebhookEventListApi(APIView):
    throttle_classes = [SignalsTokenThrottle]

    @extend_schema(responses=WebhookEventSerializer(many=True))
    def get(self, request: Request, signal_bot_id: int) -> Response:
        bot = signal_bot_get_for_user(user=request.user, bot_id=signal_bot_id)
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(webhook_events_for_bot(bot=bot), request)
        return paginator.get_paginated_response(WebhookEventSerializer(page, many=True).data)
