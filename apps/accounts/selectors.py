import hashlib
import hmac

from django.utils import timezone

from apps.accounts.models import ApiToken, User

TOKEN_PREFIX_LENGTH = 12


def api_token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def api_token_authenticate(*, raw: str) -> User | None:
    token = (
        ApiToken.objects.select_related("user")
        .filter(prefix=raw[:TOKEN_PREFIX_LENGTH], revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    if token is None or not hmac.compare_digest(token.key_hash, api_token_hash(raw)):
        return None
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
    return token.user


def api_token_list_for_user(*, user: User):
    return ApiToken.objects.filter(user=user)


def api_token_get_for_user(*, user: User, token_id: int) -> ApiToken:
    from django.shortcuts import get_object_or_404

    return get_object_or_404(ApiToken, pk=token_id, user=user)
