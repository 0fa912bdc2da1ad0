"""The ledger is a leaf: every app records into audit, and audit imports none of them."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OTHER_APPS = {"accounts", "governance", "flows", "console", "reports", "scim"}


def imported_apps(path: Path) -> set[str]:
    apps = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            apps.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            apps.add(node.module.split(".")[0])
    return apps


def test_audit_imports_no_other_app_of_ours():
    offenders = {str(path.relative_to(ROOT)): sorted(imported_apps(path) & OTHER_APPS)
                 for path in (ROOT / "audit").rglob("*.py") if imported_apps(path) & OTHER_APPS}
    assert offenders == {}
