"""Template helpers: embed a Plotly figure, and say audit events, reasons and rules in words."""
import orjson
from django import template
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from governance.models import Mechanism

register = template.Library()

# the characters json_script escapes, so figure JSON cannot close its <script> element
_JSON_ESCAPES = {ord(">"): "\\u003E", ord("<"): "\\u003C", ord("&"): "\\u0026"}
MECHANISMS = dict(Mechanism.choices)
SCOPES = {"organization": "Organization", "group": "Group", "account": "Account"}


@register.simple_tag
def chart(figure, name: str, label: str = ""):
    """A Plotly figure as a placeholder and its JSON; static/js/console.js draws it with the local plotly.js."""
    data = figure.to_json().translate(_JSON_ESCAPES)
    return format_html('<div class="chart" id="chart-{}" data-figure="chart-{}-data" role="img" aria-label="{}">'
                       '</div><script type="application/json" id="chart-{}-data">{}</script>',
                       name, name, label, name, mark_safe(data))


@register.filter
def mechanism(value: str) -> str:
    return MECHANISMS.get(value, value)


@register.filter
def get_item(mapping, key):
    return mapping.get(key) if mapping else None


@register.filter
def percent(part, whole) -> str:
    return f"{part / whole:.0%}" if whole else "–"


def _target(payload: dict) -> str:
    if payload.get("feature"):
        return payload["feature"]
    return f"{payload.get('data_category')} → {payload.get('purpose')}"


def _rule(state: dict | None) -> str:
    if not state:
        return ""
    subject = {"group": f" {state.get('group_name')}", "account": f" {state.get('account')}"}.get(state["scope"], "")
    return (f"{SCOPES.get(state['scope'], state['scope'])}{subject}: {_target(state)} {state['effect']}"
            f"{', locked' if state.get('locked') else ''}")


@register.filter
def event_summary(event) -> str:
    """One line saying what an audit event records."""
    payload = orjson.loads(event.body).get("payload", {})
    kind = event.kind
    if kind == "policy.changed":
        state = payload.get("after") or payload.get("before")
        text = f"{payload.get('action', 'changed').capitalize()} rule #{payload.get('rule')}: {_rule(state)}"
        if payload.get("action") == "changed" and payload.get("before"):
            before = payload["before"]
            text += f" (was {before['effect']}{', locked' if before.get('locked') else ''})"
        return text + (f" — “{payload['reason']}”" if payload.get("reason") else "")
    if kind in ("consent.granted", "consent.revoked"):
        verb = "granted" if kind == "consent.granted" else "revoked"
        text = f"{payload.get('account')} {verb} {_target(payload)} · {mechanism(payload.get('mechanism', ''))}"
        if payload.get("terms_version"):
            text += f" · terms {payload['terms_version']}"
        return text + ("" if payload.get("freely_given", True) else " · not freely given")
    if kind == "terms.published":
        return (f"Terms {payload.get('version')} effective {payload.get('effective_at', '')[:10]}"
                f"{' · requires re-consent' if payload.get('requires_reconsent') else ''}")
    if kind in ("flow.permitted", "flow.violation"):
        text = (f"{payload.get('data_category')} → {payload.get('purpose')} to {payload.get('destination')}"
                f" · {len(payload.get('accounts', []))} account(s)")
        if payload.get("blocking_accounts"):
            text += f" · blocked by {', '.join(payload['blocking_accounts'][:3])}"
        return text
    if kind == "flow.batch":
        counts, first, count = payload.get("counts") or {}, payload.get("first_leaf"), payload.get("leaf_count", 0)
        text = (f"Batch {payload.get('batch')}: {count:,} flow(s), {counts.get('permitted', 0):,} permitted, "
                f"{counts.get('violation', 0):,} violation(s)")
        if counts.get("duplicate"):
            text += f", {counts['duplicate']:,} duplicate(s) left out"
        return text + (f" · leaves {first:,}–{first + count - 1:,}" if count and isinstance(first, int) else "")
    if kind.startswith("account."):
        state = payload.get("after") or payload.get("before") or {}
        return f"{state.get('user_name', '')}" + ("" if state.get("active", True) else " (inactive)")
    if kind.startswith("group."):
        state = payload.get("after") or payload.get("before") or {}
        return state.get("display_name", "")
    if kind == "membership.changed":
        return f"{payload.get('user')} is now {payload.get('role')}"
    if kind == "console.login":
        return f"signed in ({payload.get('role')})"
    if kind.startswith("token."):
        return f"token {payload.get('name')} ({payload.get('scope')})"
    return ", ".join(f"{k}: {v}" for k, v in list(payload.items())[:4])


@register.filter
def reason_text(reason: dict) -> str:
    """A decision reason (as stored with a flow) in words."""
    code = reason.get("code", "")
    if code.startswith("policy_"):
        text = f"policy {'allows' if code == 'policy_allows' else 'denies'} ({reason.get('decided_by')}"
        if reason.get("locked_by"):
            text += f", locked by rule #{reason['locked_by']}"
        return text + ")"
    if code == "consent_valid":
        text = f"consent: {mechanism(reason.get('mechanism', ''))}"
        if reason.get("terms_version"):
            text += f", terms {reason['terms_version']}"
        return text + ("" if reason.get("freely_given", True) else " (not freely given)")
    if code == "consent_stale":
        return f"consent stale since terms {reason.get('stale_since_terms')}"
    if code == "consent_revoked":
        return "consent revoked"
    if code == "consent_missing":
        return "no consent"
    return code


@register.filter
def rule_ref(rule, group_names=None) -> str:
    """An engine RuleRef in words: its level, its value, its lock and its reason."""
    subject = ""
    if rule.scope == "group":
        subject = f" {group_names.get(rule.group_id, rule.group_id) if group_names else rule.group_id}"
    text = f"{SCOPES.get(rule.scope, rule.scope)}{subject} rule #{rule.id}: {rule.effect}"
    if rule.locked:
        text += ", locked"
    if rule.reason:
        text += f" — “{rule.reason}”"
    return text


@register.filter
def number(value) -> str:
    """12345 -> 12,345."""
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return value
