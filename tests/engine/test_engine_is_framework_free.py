"""The engine imports nothing from Django or any Django app (beside import-linter)."""

import ast
from pathlib import Path

ENGINE = Path(__file__).resolve().parents[2] / "apps" / "engine"
FORBIDDEN_ROOTS = {"django", "celery", "channels", "rest_framework", "config"}


def _imported_modules(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def test_engine_modules_import_no_framework_or_app_code():
    offenders = []
    files = sorted(ENGINE.rglob("*.py"))
    assert files, "apps/engine has no modules"
    for path in files:
        for module in _imported_modules(path):
            root = module.split(".")[0]
            is_other_app = module.startswith("apps.") and not module.startswith("apps.engine")
            if root in FORBIDDEN_ROOTS or is_other_app:
                offenders.append(f"{path.relative_to(ENGINE)}: {module}")
    assert offenders == []
