"""Exchange account pages: list, connect, detail, replace keys, delete."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods

from apps.common.errors import ApplicationError
from apps.exchanges.forms import ExchangeAccountCreateForm, KeysRotateForm
from apps.exchanges.selectors import (
    exchange_account_get_for_user,
    exchange_account_list_for_user,
)
from apps.exchanges.services import (
    exchange_account_create,
    exchange_account_delete,
    exchange_account_rotate_keys,
)

SECRET_FIELDS = ("api_key", "api_secret", "passphrase")


def _template(request: HttpRequest, page: str, partial: str) -> str:
    return f"{page}#{partial}" if getattr(request, "htmx", False) else page


def _add_error(form, error: ApplicationError) -> None:
    form.add_error(error.field if error.field in form.fields else None, error.message)


@login_required
@require_GET
def account_list(request: HttpRequest) -> HttpResponse:
    accounts = exchange_account_list_for_user(user=request.user)
    return render(request, "exchanges/list.html", {"accounts": accounts})


@sensitive_post_parameters(*SECRET_FIELDS)
@login_required
@require_http_methods(["GET", "POST"])
def account_create(request: HttpRequest) -> HttpResponse:
    form = ExchangeAccountCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            account = exchange_account_create(
                owner=request.user,
                exchange=data["exchange"],
                label=data["label"],
                mode=data["mode"],
                api_key=data["api_key"],
                api_secret=data["api_secret"],
                passphrase=data["passphrase"],
                initial_balances=data["initial_balances"],
            )
        except ApplicationError as error:
            _add_error(form, error)
        else:
            messages.success(request, f"Connected “{account.label}”.")
            return redirect("exchanges:detail", account_id=account.pk)
    template = _template(request, "exchanges/create.html", "account_form")
    return render(request, template, {"form": form})


@login_required
@require_GET
def account_detail(request: HttpRequest, account_id: int) -> HttpResponse:
    account = exchange_account_get_for_user(user=request.user, account_id=account_id)
    return render(request, "exchanges/detail.html", {"account": account})


@sensitive_post_parameters(*SECRET_FIELDS)
@login_required
@require_http_methods(["GET", "POST"])
def account_rotate_keys(request: HttpRequest, account_id: int) -> HttpResponse:
    account = exchange_account_get_for_user(user=request.user, account_id=account_id)
    form = KeysRotateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            exchange_account_rotate_keys(
                account=account,
                acting_user=request.user,
                api_key=form.cleaned_data["api_key"],
                api_secret=form.cleaned_data["api_secret"],
                passphrase=form.cleaned_data["passphrase"],
            )
        except ApplicationError as error:
            _add_error(form, error)
        else:
            messages.success(request, f"Replaced the key of “{account.label}”.")
            return redirect("exchanges:detail", account_id=account.pk)
    template = _template(request, "exchanges/rotate_keys.html", "keys_form")
    return render(request, template, {"account": account, "form": form})


@login_required
@require_http_methods(["GET", "POST"])
def account_delete(request: HttpRequest, account_id: int) -> HttpResponse:
    account = exchange_account_get_for_user(user=request.user, account_id=account_id)
    if request.method == "POST":
        label = account.label
        exchange_account_delete(account=account, acting_user=request.user)
        messages.success(request, f"Deleted “{label}”.")
        return redirect("exchanges:list")
    return render(request, "exchanges/delete.html", {"account": account})
