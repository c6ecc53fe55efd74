"""REST API for exchange accounts: keys are write-only, output shows key_last4 only."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.common.errors import ApplicationError
from apps.exchanges.models import ExchangeAccount
from apps.exchanges.selectors import (
    exchange_account_get_for_user,
    exchange_account_list_for_user,
)
from apps.exchanges.services import exchange_account_create, exchange_account_delete


class ExchangeAccountOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    exchange = serializers.CharField()
    label = serializers.CharField()
    mode = serializers.CharField()
    key_last4 = serializers.CharField()
    created_at = serializers.DateTimeField()
    paper_balances = serializers.SerializerMethodField()

    def get_paper_balances(self, account: ExchangeAccount) -> dict[str, str]:
        # Decimals as strings so no precision is lost in JSON.
        return {balance.asset: str(balance.amount) for balance in account.paper_balances.all()}


def application_error_response(error: ApplicationError) -> Response:
    return Response(
        {error.field or "non_field_errors": [error.message]}, status=status.HTTP_400_BAD_REQUEST
    )


class ExchangeAccountListApi(APIView):
    """List your exchange accounts (GET) or connect one (POST)."""

    class InputSerializer(serializers.Serializer):
        exchange = serializers.CharField(max_length=50)
        label = serializers.CharField(max_length=100)
        mode = serializers.ChoiceField(choices=ExchangeAccount.Mode.choices)
        api_key = serializers.CharField(
            write_only=True, required=False, allow_blank=True, max_length=500
        )
        api_secret = serializers.CharField(
            write_only=True, required=False, allow_blank=True, max_length=500
        )
        passphrase = serializers.CharField(
            write_only=True, required=False, allow_blank=True, max_length=500
        )
        initial_balances = serializers.DictField(
            child=serializers.DecimalField(max_digits=38, decimal_places=18, min_value=0),
            required=False,
            help_text='Paper accounts only, e.g. {"USDT": "10000"}; default 10,000 USDT.',
        )

    OutputSerializer = ExchangeAccountOutputSerializer

    @extend_schema(responses=OutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        accounts = exchange_account_list_for_user(user=request.user).prefetch_related(
            "paper_balances"
        )
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(accounts, request, view=self)
        return paginator.get_paginated_response(self.OutputSerializer(page, many=True).data)

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer})
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            account = exchange_account_create(
                owner=request.user,
                exchange=data["exchange"],
                label=data["label"],
                mode=data["mode"],
                api_key=data.get("api_key", ""),
                api_secret=data.get("api_secret", ""),
                passphrase=data.get("passphrase", ""),
                initial_balances=data.get("initial_balances"),
            )
        except ApplicationError as error:
            return application_error_response(error)
        return Response(self.OutputSerializer(account).data, status=status.HTTP_201_CREATED)


class ExchangeAccountDetailApi(APIView):
    """One of your exchange accounts (GET), or remove it (DELETE)."""

    OutputSerializer = ExchangeAccountOutputSerializer

    @extend_schema(responses=OutputSerializer)
    def get(self, request: Request, account_id: int) -> Response:
        account = exchange_account_get_for_user(user=request.user, account_id=account_id)
        return Response(self.OutputSerializer(account).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, account_id: int) -> Response:
        account = exchange_account_get_for_user(user=request.user, account_id=account_id)
        exchange_account_delete(account=account, acting_user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
