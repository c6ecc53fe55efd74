"""REST API for strategies: list/create, retrieve with versions, create a version.

A 400 body names the field or tree path of every problem:
`{"errors": [{"path": "entry.all[1].left.params.period", "message": "..."}], "detail": ...}`.
Strangers get 404 for any strategy or version that is not theirs.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.common.errors import ApplicationError
from apps.strategies.models import StrategyKind
from apps.strategies.selectors import (
    strategy_get_for_user,
    strategy_list_for_user,
    strategy_version_get_for_user,
    strategy_versions,
)
from apps.strategies.services import NoChanges, strategy_create, strategy_version_create
from apps.strategies.specs import StrategyInvalid


class VersionOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    strategy_id = serializers.IntegerField()
    number = serializers.IntegerField()
    template = serializers.CharField()
    params = serializers.JSONField()
    entry = serializers.JSONField()
    exit = serializers.JSONField()
    script = serializers.CharField()
    content_hash = serializers.CharField()
    note = serializers.CharField()
    created_at = serializers.DateTimeField()


class StrategyOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    kind = serializers.CharField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    archived_at = serializers.DateTimeField(allow_null=True)


class SpecInputSerializer(serializers.Serializer):
    """A version's content; which fields matter depends on the strategy's kind."""

    template = serializers.CharField(required=False, allow_blank=True, default="")
    params = serializers.JSONField(required=False, default=dict)
    entry = serializers.JSONField(required=False, default=None)
    exit = serializers.JSONField(required=False, default=None)
    script = serializers.CharField(
        required=False, allow_blank=True, default="", trim_whitespace=False
    )
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=200)


def _problems_response(problems: list[tuple[str, str]]) -> Response:
    errors = [{"path": path, "message": message} for path, message in problems]
    detail = "; ".join(f"{p}: {m}" if p else m for p, m in problems)
    return Response({"detail": detail, "errors": errors}, status=status.HTTP_400_BAD_REQUEST)


def _serializer_problems(errors: dict[str, Any]) -> list[tuple[str, str]]:
    return [(field, str(message)) for field, messages in errors.items() for message in messages]


class StrategyListCreateApi(APIView):
    @extend_schema_serializer(component_name="StrategyCreateInput")
    class InputSerializer(SpecInputSerializer):
        name = serializers.CharField(max_length=100)
        kind = serializers.ChoiceField(choices=StrategyKind.values)
        description = serializers.CharField(required=False, allow_blank=True, default="")

    @extend_schema_serializer(component_name="StrategyListItem")
    class OutputSerializer(StrategyOutputSerializer):
        latest_number = serializers.IntegerField()

    @extend_schema(responses=OutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        strategies = strategy_list_for_user(user=request.user)
        return Response(self.OutputSerializer(strategies, many=True).data)

    @extend_schema(request=InputSerializer, responses={201: StrategyOutputSerializer})
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        if not serializer.is_valid():
            return _problems_response(_serializer_problems(serializer.errors))
        try:
            strategy, version = strategy_create(owner=request.user, **serializer.validated_data)
        except StrategyInvalid as exc:
            return _problems_response(exc.problems)
        data = {
            **StrategyOutputSerializer(strategy).data,
            "versions": [VersionOutputSerializer(version).data],
        }
        return Response(data, status=status.HTTP_201_CREATED)


class StrategyDetailApi(APIView):
    @extend_schema_serializer(component_name="StrategyWithVersions")
    class OutputSerializer(StrategyOutputSerializer):
        versions = VersionOutputSerializer(many=True)

    @extend_schema(responses=OutputSerializer)
    def get(self, request: Request, strategy_id: int) -> Response:
        strategy = strategy_get_for_user(user=request.user, strategy_id=strategy_id)
        data = {**StrategyOutputSerializer(strategy).data}
        data["versions"] = VersionOutputSerializer(
            strategy_versions(strategy=strategy), many=True
        ).data
        return Response(data)


class StrategyVersionCreateApi(APIView):
    @extend_schema_serializer(component_name="StrategyVersionCreateInput")
    class InputSerializer(SpecInputSerializer):
        pass

    @extend_schema(request=InputSerializer, responses={201: VersionOutputSerializer})
    def post(self, request: Request, strategy_id: int) -> Response:
        # Look the strategy up first: a stranger gets 404 whatever the body says.
        strategy = strategy_get_for_user(user=request.user, strategy_id=strategy_id)
        serializer = self.InputSerializer(data=request.data)
        if not serializer.is_valid():
            return _problems_response(_serializer_problems(serializer.errors))
        try:
            version = strategy_version_create(
                strategy=strategy, acting_user=request.user, **serializer.validated_data
            )
        except NoChanges as exc:
            latest = strategy_versions(strategy=strategy).first()
            body = {"detail": exc.message, "created": False, "version": None}
            body["version"] = VersionOutputSerializer(latest).data
            return Response(body, status=status.HTTP_200_OK)
        except StrategyInvalid as exc:
            return _problems_response(exc.problems)
        except ApplicationError as exc:
            return _problems_response([(exc.field or "", exc.message)])
        return Response(
            {"created": True, "version": VersionOutputSerializer(version).data},
            status=status.HTTP_201_CREATED,
        )


class StrategyVersionDetailApi(APIView):
    @extend_schema(responses=VersionOutputSerializer)
    def get(self, request: Request, version_id: int) -> Response:
        version = strategy_version_get_for_user(user=request.user, version_id=version_id)
        return Response(VersionOutputSerializer(version).data)
