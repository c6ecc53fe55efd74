"""Account pages: signup, profile and API tokens (function views), plus Django's auth views
subclassed only where a write must go through our audited services."""

from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import login, update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.views.decorators.http import require_http_methods, require_POST

from apps.accounts.forms import ApiTokenCreateForm, ProfileForm, SignupForm
from apps.accounts.selectors import api_token_get_for_user, api_token_list_for_user
from apps.accounts.services import (
    api_token_create,
    api_token_revoke,
    user_password_change,
    user_password_reset_complete,
    user_password_reset_request,
    user_profile_update,
    user_signup,
)
from apps.common.errors import ApplicationError

# Service field names that differ from the form's.
_SIGNUP_FIELDS = {"password": "password1"}
_MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


def _template(request: HttpRequest, page: str, partial: str) -> str:
    return f"{page}#{partial}" if getattr(request, "htmx", False) else page


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect(settings.LOGIN_REDIRECT_URL)
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = user_signup(
                email=form.cleaned_data["email"],
                password=form.cleaned_data["password1"],
                display_name=form.cleaned_data["display_name"],
            )
        except ApplicationError as error:
            form.add_error(_SIGNUP_FIELDS.get(error.field, error.field), error.message)
        else:
            login(request, user, backend=_MODEL_BACKEND)
            return redirect(settings.LOGIN_REDIRECT_URL)
    return render(request, "accounts/signup.html", {"form": form})


@login_required
@require_http_methods(["GET", "POST"])
def profile(request: HttpRequest) -> HttpResponse:
    form = ProfileForm(request.POST or None, initial={"display_name": request.user.display_name})
    saved = False
    if request.method == "POST" and form.is_valid():
        try:
            user_profile_update(user=request.user, display_name=form.cleaned_data["display_name"])
        except ApplicationError as error:
            form.add_error(error.field, error.message)
        else:
            if not request.htmx:
                return redirect("accounts:profile")
            saved = True
    context = {"form": form, "saved": saved, "profile_user": request.user}
    return render(request, _template(request, "accounts/profile.html", "profile_form"), context)


def _tokens_page(
    request: HttpRequest, form: ApiTokenCreateForm, new_token_raw: str | None = None
) -> HttpResponse:
    context = {
        "form": form,
        "tokens": api_token_list_for_user(user=request.user),
        "new_token_raw": new_token_raw,
        "max_api_tokens": request.user.max_api_tokens,
    }
    return render(request, _template(request, "accounts/tokens.html", "token_panel"), context)


@login_required
@require_http_methods(["GET", "POST"])
def tokens(request: HttpRequest) -> HttpResponse:
    form = ApiTokenCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            _token, raw = api_token_create(user=request.user, name=form.cleaned_data["name"])
        except ApplicationError as error:
            form.add_error(error.field, error.message)
        else:
            # Rendered straight from the POST, never stored: this response is the only time
            # the raw token exists outside the user's hands.
            response = _tokens_page(request, ApiTokenCreateForm(), new_token_raw=raw)
            response["Cache-Control"] = "no-store"
            return response
    return _tokens_page(request, form)


@login_required
@require_POST
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    token = api_token_get_for_user(user=request.user, token_id=token_id)
    api_token_revoke(user=request.user, token=token)
    if request.htmx:
        return _tokens_page(request, ApiTokenCreateForm())
    return redirect("accounts:tokens")


class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "accounts/password_change.html"
    success_url = reverse_lazy("accounts:password_change_done")

    def form_valid(self, form):
        user_password_change(user=form.user, new_password=form.cleaned_data["new_password1"])
        # Keeps this session; every other session of the user now fails its hash check.
        update_session_auth_hash(self.request, form.user)
        return HttpResponseRedirect(self.get_success_url())


class PasswordResetView(auth_views.PasswordResetView):
    template_name = "accounts/password_reset.html"
    success_url = reverse_lazy("accounts:password_reset_done")

    def form_valid(self, form):
        # Links point at SITE_URL, never at the request's Host header, which a client controls.
        site = urlsplit(settings.SITE_URL)
        user_password_reset_request(
            email=form.cleaned_data["email"],
            domain=site.netloc,
            use_https=site.scheme == "https",
        )
        return HttpResponseRedirect(self.get_success_url())


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "accounts/password_reset_confirm.html"
    success_url = reverse_lazy("accounts:password_reset_complete")

    def form_valid(self, form):
        user_password_reset_complete(
            user=form.user, new_password=form.cleaned_data["new_password1"]
        )
        del self.request.session[auth_views.INTERNAL_RESET_SESSION_TOKEN]
        return HttpResponseRedirect(self.get_success_url())
