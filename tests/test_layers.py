"""Imports flow one way between the apps (docs/architecture.md): accounts ← governance ← flows ←
console / scim / reports, identity (sign-in) above accounts and below console, with audit, the
ledger, a leaf that every app records into and that calls nothing of ours. Function-local imports
count: one that hides a cycle is a cycle."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# What each app may import of ours. config/urls.py sits above them all and is the one exception.
MAY_IMPORT = {
    "config": set(),
    "audit": {"config"},
    "accounts": {"config", "audit"},
    "governance": {"config", "audit", "accounts"},
    "flows": {"config", "audit", "accounts", "governance"},
    "identity": {"config", "audit", "accounts"},
    "reports": {"config", "audit", "accounts", "governance", "flows"},
    "console": {"config", "audit", "accounts", "governance", "flows", "identity"},
    "scim": {"config", "audit", "accounts", "governance"},
}
ABOVE_ALL = {ROOT / "config" / "urls.py"}


def imported_apps(path: Path) -> set[str]:
    apps = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            apps.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            apps.add(node.module.split(".")[0])
    return apps & MAY_IMPORT.keys()


def modules_of(app: str):
    return (path for path in (ROOT / app).rglob("*.py") if path not in ABOVE_ALL)


def test_every_app_imports_only_the_apps_below_it():
    wrong = {str(path.relative_to(ROOT)): sorted(imported_apps(path) - MAY_IMPORT[app] - {app})
             for app in MAY_IMPORT for path in modules_of(app)
             if imported_apps(path) - MAY_IMPORT[app] - {app}}
    assert wrong == {}


def test_the_allowed_directions_have_no_cycle():
    order = []
    remaining = {app: set(below) for app, below in MAY_IMPORT.items()}
    while remaining:
        ready = sorted(app for app, below in remaining.items() if below <= set(order))
        assert ready, f"a cycle among {sorted(remaining)}"
        order.extend(ready)
        for app in ready:
            del remaining[app]
    assert order[:2] == ["config", "audit"]  # the ledger sits right above the settings


def test_every_product_app_is_covered():
    apps = {path.parent.name for path in ROOT.glob("*/apps.py")}
    assert apps <= MAY_IMPORT.keys(), f"add {sorted(apps - MAY_IMPORT.keys())} to MAY_IMPORT"
