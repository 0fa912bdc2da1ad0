"""The record of processing: each use with its basis, from the switches, the consent coverage and the flows."""
from collections import defaultdict

from governance.consent import BASIS_FREELY_GIVEN, BASIS_NOT_FREELY_GIVEN, STALE


def _basis(switch: dict, coverage: dict | None) -> tuple[str, str]:
    """The basis of a use, in a word and in a sentence."""
    if switch["effect"] != "allow":
        rules = ", ".join(f"#{r}" for r in switch["rules"])
        return "none", f"denied ({'rule ' + rules if rules else 'catalog default'})"
    if switch["enabled_by"]:
        allowed_by = f"AI feature {', '.join(switch['enabled_by'])} switched on"
    elif switch["rules"]:
        allowed_by = f"policy rule #{switch['rules'][-1]} ({switch['decided_by']})"
    else:
        allowed_by = "catalog default"
    if coverage is not None:
        valid = coverage[BASIS_FREELY_GIVEN] + coverage[BASIS_NOT_FREELY_GIVEN]
        return "consent", (f"individual consent ({valid} of {coverage['accounts']} accounts, "
                           f"{coverage[BASIS_NOT_FREELY_GIVEN]} not freely given, {coverage[STALE]} stale); "
                           f"{allowed_by}")
    if switch["rules"]:
        return "policy rule", allowed_by
    return ("feature" if switch["enabled_by"] else "catalog default"), allowed_by


def processing_record(switches: dict, consent: dict, flows: dict, names: dict) -> list[dict]:
    """Data category x purpose x destination with its basis, in the spirit of GDPR Art. 30: every use
    allowed for the organization or a group at the period's end, and every use observed in the
    period (with the destinations its flows went to)."""
    coverage = {(row["data_category"], row["purpose"]): row for row in consent["by_use"]}
    observed = defaultdict(list)
    for cell in flows["cells"]:
        observed[(cell["data_category"], cell["purpose"])].append(cell)
    rows = []
    for switch in switches["data_sharing"]:
        pair = (switch["data_category"], switch["purpose"])
        if switch["effect"] != "allow" and not switch["groups_allowing"] and pair not in observed:
            continue
        basis, detail = _basis(switch, coverage.get(pair) if switch["needs_consent"] else None)
        category = names["data_categories"].get(pair[0], {})
        purpose = names["purposes"].get(pair[1], {})
        common = {
            "data_category": pair[0], "category_name": category.get("name", pair[0]), "kind": switch["kind"],
            "fides_data_category": category.get("fides_key", ""), "purpose": pair[1],
            "purpose_name": purpose.get("name", pair[1]), "fides_data_use": purpose.get("fides_key", ""),
            "organization_effect": switch["effect"], "groups_allowing": switch["groups_allowing"],
            "needs_consent": switch["needs_consent"], "basis": basis, "basis_detail": detail,
        }
        for cell in observed.get(pair) or [None]:
            rows.append({**common, "destination": cell["destination"] if cell else None,
                         "flows": cell["flows"] if cell else 0, "violations": cell["violations"] if cell else 0,
                         "volume": cell["volume"] if cell else 0})
    return rows
