"""The HTML report's own Content-Security-Policy, carried in the file.

The report is downloaded or mailed and opened where no server sends a header (a mail client, a
file on disk), so it states its policy in a <meta>: it loads nothing from anywhere, and runs only
the scripts it was written with (plotly.js and its chart calls), each allowed by its SHA-256.
"""
import base64
import hashlib
import re

from django import template
from django.utils.html import format_html

register = template.Library()

_INLINE_SCRIPT = re.compile(r"<script\b[^>]*>(.*?)</script>", re.DOTALL | re.IGNORECASE)


def script_hashes(html: str) -> list[str]:
    """CSP hash sources of every inline script in `html`, in order of first appearance."""
    hashes = (base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
              for body in _INLINE_SCRIPT.findall(html))
    return list(dict.fromkeys(f"'sha256-{digest}'" for digest in hashes))


@register.simple_tag
def report_csp(charts: dict) -> str:
    """The <meta> policy for a report whose inline scripts are those of `charts` (key -> {"html": ...})."""
    scripts = " ".join(script_hashes("".join(chart["html"] for chart in charts.values()))) or "'none'"
    policy = (f"default-src 'none'; script-src {scripts}; style-src 'unsafe-inline'; img-src data:; "
              "base-uri 'none'; form-action 'none'")
    return format_html('<meta http-equiv="Content-Security-Policy" content="{}">', policy)
