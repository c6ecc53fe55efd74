"""The trading core: pure Python, no Django, Celery, Channels or DRF (import-linter enforces it)."""
