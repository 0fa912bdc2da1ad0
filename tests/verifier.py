"""The standalone verifier (tools/verify_audit_log.py) as tests load it: by path, since tools/ is no package."""
import importlib.util
from pathlib import Path

TOOL = Path(__file__).resolve().parents[1] / "tools" / "verify_audit_log.py"
_spec = importlib.util.spec_from_file_location("verify_audit_log", TOOL)
tool = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tool)
