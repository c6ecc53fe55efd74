"""What the REST API shares across apps."""

from __future__ import annotations

from rest_framework import status
from rest_framework.response import Response

from apps.common.errors import InputInvalid


def invalid_response(error: InputInvalid) -> Response:
    """A 400 in DRF's shape: each field path with its messages; `non_field_errors` for
    problems without a field."""
    body: dict[str, list[str]] = {}
    for path, message in error.problems:
        body.setdefault(path or "non_field_errors", []).append(message)
    return Response(body, status=status.HTTP_400_BAD_REQUEST)
