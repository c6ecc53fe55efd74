"""DRF authentication by personal API token: `Authorization: Bearer <token>`."""

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header


class ApiTokenAuthentication(BaseAuthentication):
    keywords = (b"bearer", b"token")

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() not in self.keywords:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(
                "Invalid Authorization header: expected 'Bearer <token>'."
            )
        from apps.accounts.selectors import api_token_authenticate

        try:
            raw = parts[1].decode()
        except UnicodeError as exc:
            raise exceptions.AuthenticationFailed("Invalid token.") from exc
        user = api_token_authenticate(raw=raw)
        if user is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked token.")
        return (user, None)

    def authenticate_header(self, request):
        return "Bearer"
