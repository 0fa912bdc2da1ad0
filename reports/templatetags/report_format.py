"""Number formats of the report templates."""
from django import template

register = template.Library()


@register.filter
def num(value) -> str:
    """12345 -> 12,345; anything else as it is."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "" if value is None else str(value)
    return f"{value:,}"


@register.filter
def pct(value) -> str:
    """0.1234 -> 12.3 %; None -> —."""
    if value is None:
        return "—"
    return f"{value * 100:.1f} %"


@register.filter
def yesno_mark(value) -> str:
    return "yes" if value else ""


@register.filter
def first_rows(rows, limit):
    return rows[:int(limit)]
