"""Environment access shared by every settings module.

Everything configurable is read here through django-environ, so the README's
configuration table and this file stay the single source of truth.
"""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("TRADELOOP_VAR_DIR", default=str(BASE_DIR / "var")))

env = environ.Env()
