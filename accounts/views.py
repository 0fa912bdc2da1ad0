from django.contrib.auth.decorators import login_required
from django.http import HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from .authentication import ConsoleSessionAuthentication, membership_for_session
from .models import Membership
from .selectors import organization_overview


@login_required
def home(request):
    membership = membership_for_session(request.user, request.session.get(ConsoleSessionAuthentication.SESSION_KEY))
    context = {"membership": membership,
               "memberships": Membership.objects.filter(user=request.user).select_related("organization")}
    if membership is not None:
        context["overview"] = organization_overview(membership.organization)
    return render(request, "accounts/home.html", context)


@login_required
@require_POST
def switch_organization(request):
    membership = Membership.objects.filter(user=request.user, organization_id=request.POST.get("organization"))
    if not membership.exists():
        return HttpResponseBadRequest("Not a member of that organization.")
    request.session[ConsoleSessionAuthentication.SESSION_KEY] = membership.get().organization_id
    return redirect("home")
