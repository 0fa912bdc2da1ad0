"""The admin console: server-rendered pages over the same selectors and services as the API.

A view reads its input through a form, calls selectors (reads) or one service (a write, audited
exactly like the API's, with the signed-in user as actor), and renders. Charts are built by
`flows.charts` from selector output and embedded as figure JSON.
"""
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import F
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import services as accounts_services
from accounts.models import Account, ApiToken, OrgRole, Role
from accounts.selectors import account_by_user_name, account_list, account_memberships, group_names
from audit import proofs
from audit.actors import user_actor
from flows import charts, leaves
from flows.selectors import account_flows, flow_list, flows_of
from governance import services as governance
from governance.selectors import catalog_names, compiled_policy, effective_policy_for, simulate_rule
from identity import invitations
from identity import mfa as identity_mfa
from identity import selectors as identity_selectors
from identity.models import Invitation
from identity.policy import policy_of

from . import periods, selectors
from .access import console_view, owner_required, page_context, writer_required
from .forms import (AccountFilterForm, AuditFilterForm, EmailDomainsForm, FlowFilterForm, InviteForm,
                    OrganizationNameForm, OverviewForm, RemoveRuleForm, RuleForm, SignInPolicyForm, TokenForm)
from .overview import overview_of, violation_count


@require_GET
@console_view
def overview(request):
    period = OverviewForm(request.GET).values()
    data = overview_of(request.organization, **period)
    names = data["names"]
    heatmap = data["heatmap"]
    figures = {
        "sankey": charts.exposure_sankey(data["cells"], category_names=names.category_names,
                                         category_kinds=names.category_kinds, purpose_names=names.purpose_names),
        "heatmap": charts.exposure_heatmap(heatmap["groups"], heatmap["targets"], heatmap["shares"],
                                           heatmap["counts"]),
        "timeline": charts.activity_timeline(**data["timeline"]),
        "treemap": charts.exposure_treemap(request.organization.name, data["treemap"]),
    }
    return render(request, "console/overview.html", page_context(
        request, "overview", data=data, period=period, figures=figures,
        period_choices=periods.PERIODS, form=OverviewForm(initial=period)))


@require_GET
@console_view
def policy(request):
    matrix = selectors.policy_matrix(request.organization)
    return render(request, "console/policy.html", page_context(request, "policy", **matrix))


@require_http_methods(["GET", "POST"])
@writer_required
def policy_change(request):
    """Set a switch in two steps: the form and its what-if impact, then confirm with a reason."""
    organization = request.organization
    names = catalog_names(organization)
    step = request.POST.get("step", "edit") if request.method == "POST" else "edit"
    if request.method == "GET":
        form = RuleForm(initial=_initial_rule(request.GET), organization=organization, names=names)
        return render(request, "console/policy_change.html", page_context(request, "policy", form=form))
    form = RuleForm(request.POST, organization=organization, names=names, require_reason=step == "confirm")
    if not form.is_valid():
        if step == "confirm" and not _target_errors(form):  # only the reason is missing: ask again
            impact = simulate_rule(organization, **form.rule_arguments())
            return render(request, "console/policy_preview.html", page_context(
                request, "policy", form=form, impact=impact, target=_target_label(form, names)), status=400)
        return render(request, "console/policy_change.html", page_context(request, "policy", form=form), status=400)
    arguments = form.rule_arguments()
    if step == "confirm":
        rule, created = governance.set_rule(organization=organization, actor=user_actor(request.user),
                                            reason=form.cleaned_data["reason"], **arguments)
        messages.success(request, f"Saved: {_target_label(form, names)} is now {rule.effect}"
                                  f"{' and locked' if rule.locked else ''} at {_scope_label(rule)}.")
        return redirect(_back(request))
    impact = simulate_rule(organization, **arguments)
    return render(request, "console/policy_preview.html", page_context(
        request, "policy", form=form, impact=impact, target=_target_label(form, names)))


@require_http_methods(["GET", "POST"])
@writer_required
def policy_remove(request, rule_id: int):
    """Remove a group's or an account's override (or an organization rule) after saying why."""
    rule = selectors.rule_of(request.organization, rule_id)
    if rule is None:
        raise Http404
    form = RemoveRuleForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        governance.delete_rule(rule=rule, actor=user_actor(request.user), reason=form.cleaned_data["reason"])
        messages.success(request, f"Removed the rule at {_scope_label(rule)}.")
        return redirect(_back(request))
    return render(request, "console/policy_remove.html", page_context(request, "policy", rule=rule, form=form),
                  status=400 if request.method == "POST" else 200)


def _initial_rule(query) -> dict:
    fields = ("scope", "group", "account", "feature", "data_category", "purpose", "effect", "locked")
    initial = {name: query[name] for name in fields if query.get(name)}
    initial["locked"] = query.get("locked") in ("1", "true", "on")
    return initial


def _target_errors(form) -> bool:
    return any(name != "reason" for name in form.errors)


def _target_label(form, names) -> str:
    data = getattr(form, "cleaned_data", {})
    if data.get("feature"):
        return data["feature"].name
    if data.get("data_category") and data.get("purpose"):
        return f"{data['data_category'].name} → {data['purpose'].name}"
    return "this switch"


def _scope_label(rule) -> str:
    if rule.scope == "group":
        return f"group {rule.group.display_name}"
    if rule.scope == "account":
        return f"account {rule.account.user_name}"
    return "organization level"


def _back(request) -> str:
    target = request.POST.get("next", "")
    if target.startswith("/") and not target.startswith("//"):
        return target
    return reverse("console:policy")


@require_GET
@console_view
def accounts(request):
    organization = request.organization
    form = AccountFilterForm(request.GET, organization=organization)
    listing = account_list(organization, **form.filters())
    page = Paginator(listing, selectors.PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "console/accounts.html", page_context(
        request, "accounts", form=form, page=page, query=query.urlencode()))


@require_GET
@console_view
def account_detail(request, account_id: int):
    organization = request.organization
    account = Account.objects.filter(organization=organization, pk=account_id).prefetch_related("groups").first()
    if account is None:
        raise Http404
    now = timezone.now()
    names = catalog_names(organization)
    snapshot, values = effective_policy_for(account, at=now)
    compiled = compiled_policy(organization)
    features = [v for v in values if v.target.is_feature]
    pairs = {(v.target.data_category, v.target.purpose): v for v in values if not v.target.is_feature}
    matrix = [{"category": c, "cells": [pairs.get((c.key, p.key)) for p in names.purposes]} for c in names.categories]
    notable = [v for v in values if not v.target.is_feature and (v.applied or v.enabled_by or v.overridden)]
    return render(request, "console/account.html", page_context(
        request, "accounts", account=account, names=names, features=features, matrix=matrix, notable=notable,
        policy_version=snapshot.policy_version, at=now, group_names=group_names(organization),
        consents=selectors.account_consents(account, compiled, now), flows=account_flows(account),
        memberships=account_memberships(account)))


@require_GET
@console_view
def terms(request):
    data = selectors.terms_overview(request.organization, version=request.GET.get("version"))
    timeline = charts.terms_timeline(
        [{"version": t.version, "effective_at": t.effective_at, "requires_reconsent": t.requires_reconsent,
          "covers": len(t.covers.all()), "consents": t.consent_count} for t in data["terms"]], now=data["now"])
    figures = {"timeline": timeline, "coverage": charts.reconsent_coverage(data["coverage"])}
    return render(request, "console/terms.html", page_context(request, "terms", figures=figures, **data))


@require_GET
@console_view
def audit(request):
    organization = request.organization
    form = AuditFilterForm(request.GET)
    events = selectors.audit_events(organization, **form.filters())
    more = len(events) > selectors.PAGE_SIZE
    events = events[:selectors.PAGE_SIZE]
    status = selectors.chain_status(organization, verify=request.GET.get("verify") == "1")
    query = request.GET.copy()
    query.pop("before", None)
    query.pop("verify", None)
    return render(request, "console/audit.html", page_context(
        request, "audit", form=form, events=events, status=status, query=query.urlencode(),
        next_before=events[-1].seq if more and events else None,
        covered=status["tree_head"].tree_size if status["tree_head"] else 0))


def proof_file(request, name: str, build) -> HttpResponse:
    """A proof as a JSON attachment, or a page saying when the next signed tree head will cover it."""
    try:
        proof = build()
    except proofs.NotCovered as exc:
        return render(request, "console/proof_not_covered.html", page_context(
            request, "audit", reason=str(exc), expected_by=exc.expected_by), status=409)
    response = JsonResponse(proof, json_dumps_params={"indent": 2})
    response["Content-Disposition"] = f'attachment; filename="{request.organization.slug}-{name}-proof.json"'
    response["Cache-Control"] = "private, no-store"
    return response


@require_GET
@console_view
def audit_proof(request, seq: int):
    """The inclusion proof file of one event, against the latest signed tree head."""
    event = get_object_or_404(selectors.events_of(request.organization), seq=seq)
    return proof_file(request, f"event-{seq}", lambda: proofs.event_proof(request.organization, event))


@require_GET
@console_view
def flow_proof(request, flow_pk: int):
    """The inclusion proof file of one judged flow (of its own event, for one judged before format 2)."""
    flow = get_object_or_404(flows_of(request.organization), pk=flow_pk)
    return proof_file(request, f"flow-{flow_pk}", lambda: leaves.proof_of(flow))


@require_GET
@console_view
def flows(request):
    organization = request.organization
    names = catalog_names(organization)
    form = FlowFilterForm(request.GET, names=names)
    filters = form.cleaned_data if form.is_valid() else {}
    account = None
    if filters.get("account"):
        account = account_by_user_name(organization, filters["account"].strip())
    since_at, before = periods.instants(filters.get("since"), filters.get("until"))
    listing = [] if filters.get("account") and account is None else flow_list(
        organization, verdict=filters.get("verdict", ""), data_category=filters.get("data_category", ""),
        purpose=filters.get("purpose", ""), destination=filters.get("destination", "").strip(), account=account,
        since=since_at, before=before, cursor=filters.get("cursor"), limit=selectors.PAGE_SIZE + 1)
    more = len(listing) > selectors.PAGE_SIZE
    listing = listing[:selectors.PAGE_SIZE]
    since, until = periods.period(30)
    query = request.GET.copy()
    query.pop("cursor", None)
    last = listing[-1] if more and listing else None
    return render(request, "console/flows.html", page_context(
        request, "flows", form=form, flows=listing, names=names, query=query.urlencode(),
        violations=violation_count(organization, since, until),
        next_cursor=f"{last.occurred_at.isoformat()}~{last.pk}" if last else None,
        unknown_account=bool(filters.get("account")) and account is None,
        covered=selectors.covered_size(organization)))


@require_http_methods(["GET", "POST"])
@never_cache  # the page that shows a new token once must not be kept by any cache
@console_view
def tokens(request):
    """The organization's API and SCIM tokens: who may call, last used when. Writers create and revoke."""
    organization = request.organization
    form, created, status = TokenForm(organization=organization), None, 200
    if request.method == "POST":
        if not request.org_role.can_write:
            raise PermissionDenied("Your role in this organization is read-only.")
        form = TokenForm(request.POST, organization=organization)
        if form.is_valid():
            try:
                token, raw = accounts_services.create_api_token(organization=organization,
                                                                actor=user_actor(request.user), **form.cleaned_data)
            except ValidationError as error:  # the same name created meanwhile
                form.add_error(None, error)
            else:
                created, form = {"token": token, "raw": raw}, TokenForm(organization=organization)
        if not form.is_bound or form.errors:
            status = 400 if form.errors else 200
    listed = (ApiToken.objects.filter(organization=organization)
              .order_by(F("revoked_at").desc(nulls_first=True), "-created_at"))
    return render(request, "console/tokens.html", page_context(
        request, "tokens", tokens=listed, form=form, created=created,
        scim_url=request.build_absolute_uri(reverse("scim:root"))), status=status)


@require_POST
@writer_required
def token_revoke(request, token_id: int):
    """Revoke at once: the next request with the token is refused."""
    token = ApiToken.objects.filter(organization=request.organization, pk=token_id).first()
    if token is None:
        raise Http404
    accounts_services.revoke_api_token(token=token, actor=user_actor(request.user))
    messages.success(request, f"Revoked the token “{token.name}”: it is refused from now on.")
    return redirect("console:tokens")


SETTINGS_FORMS = {"domains": EmailDomainsForm, "name": OrganizationNameForm, "sign_in": SignInPolicyForm}


@require_http_methods(["GET", "POST"])
@console_view
def organization_settings(request):
    """The organization's settings, which every member reads and only owners change: its name, the e-mail
    domains its compliance reports are mailed to, and its sign-in rules. Each form posts its own `form`."""
    organization = request.organization
    is_owner = request.org_role.role == Role.OWNER
    policy = policy_of(organization)
    initial = {"domains": {"email_domains": "\n".join(organization.email_domains)}, "name": {"name": organization.name},
               "sign_in": {"session_minutes": policy.session_minutes, "require_sso": policy.require_sso,
                           "break_glass_user": policy.break_glass_user_id}}

    def form_for(key, data=None):
        extra = {"organization": organization} if key == "sign_in" else {}
        return SETTINGS_FORMS[key](data, initial=initial[key], **extra)

    forms, status = {key: form_for(key) for key in SETTINGS_FORMS}, 200
    if request.method == "POST":
        if not is_owner:
            raise PermissionDenied("Only the organization's owners change its settings.")
        key = request.POST.get("form") if request.POST.get("form") in SETTINGS_FORMS else "domains"
        form = forms[key] = form_for(key, request.POST)
        if form.is_valid():
            try:
                done = form.apply(organization=organization, actor=user_actor(request.user))
            except ValidationError as error:
                form.add_error(None, error)
            else:
                messages.success(request, done)
                return redirect("console:settings")
        status = 400
    return render(request, "console/settings.html", page_context(
        request, "settings", form=forms["domains"], name_form=forms["name"], sign_in_form=forms["sign_in"],
        policy=policy, is_owner=is_owner, email_domains=organization.email_domains), status=status)


@require_http_methods(["GET", "POST"])
@console_view
def people(request):
    """Who uses the console and how they sign in; owners invite people here (the link is shown once too,
    in case the mail does not arrive)."""
    organization = request.organization
    is_owner = request.org_role.role == Role.OWNER
    form, invited, status = InviteForm(), None, 200
    if request.method == "POST":
        if not is_owner:
            raise PermissionDenied("Only the organization's owners invite people.")
        form = InviteForm(request.POST)
        if form.is_valid():
            try:
                invitation, raw = invitations.invite(organization=organization, actor=user_actor(request.user),
                                                     invited_by=request.user, **form.cleaned_data)
            except ValidationError as error:
                form.add_error(None, error)
            else:
                invited, form = {"invitation": invitation, "link": invitations.link_for(raw)}, InviteForm()
        status = 400 if form.errors else 200
    return render(request, "console/people.html", page_context(
        request, "people", people=identity_selectors.console_users(organization), is_owner=is_owner, form=form,
        invited=invited, invitations=identity_selectors.pending_invitations(organization), roles=Role.choices), status=status)


def _person(request, user_id: int):
    org_role = OrgRole.objects.select_related("user").filter(organization=request.organization, user_id=user_id).first()
    if org_role is None:
        raise Http404
    return org_role.user


def _change_person(request, user_id: int, change, done) -> HttpResponse:
    """Apply `change` to the person; say what was done (`done(name)`) or, refused, why."""
    person = _person(request, user_id)
    try:
        change(person)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, done(person.get_username()))
    return redirect("console:people")


@require_POST
@owner_required
def person_role(request, user_id: int):
    role = request.POST.get("role", "")  # the service refuses anything but a role
    return _change_person(request, user_id, lambda person: accounts_services.change_org_role(
        organization=request.organization, user=person, role=role, actor=user_actor(request.user)),
        lambda name: f"{name} is now {role}.")


@require_POST
@owner_required
def person_remove(request, user_id: int):
    """Take someone out of this organization's console; their sessions here are refused from the next page on."""
    return _change_person(request, user_id, lambda person: accounts_services.remove_org_role(
        organization=request.organization, user=person, actor=user_actor(request.user)),
        lambda name: f"Removed {name} from {request.organization.name}'s console.")


@require_POST
@owner_required
def person_mfa_reset(request, user_id: int):
    """A lost authenticator: the person enrols a new one at their next sign-in."""
    return _change_person(request, user_id, lambda person: identity_mfa.remove_devices(
        user=person, actor=user_actor(request.user), organization=request.organization),
        lambda name: f"{name} sets up a new one-time code at their next sign-in.")


@require_POST
@owner_required
def invitation_revoke(request, invitation_id: int):
    invitation = get_object_or_404(Invitation, organization=request.organization, pk=invitation_id)
    invitations.revoke(invitation=invitation, actor=user_actor(request.user))
    messages.success(request, f"Withdrew the invitation to {invitation.email}: its link is refused from now on.")
    return redirect("console:people")
