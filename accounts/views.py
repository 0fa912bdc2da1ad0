from django.contrib.auth.decorators import login_required
from django.http import HttpResponseBadRequest
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from .authentication import ConsoleSessionAuthentication
from .models import Membership


@login_required
def home(request):
    return redirect("console:overview")


@login_required
@require_POST
def switch_organization(request):
    membership = Membership.objects.filter(user=request.user, organization_id=request.POST.get("organization"))
    if not membership.exists():
        return HttpResponseBadRequest("Not a member of that organization.")
    request.session[ConsoleSessionAuthentication.SESSION_KEY] = membership.get().organization_id
    return redirect("home")
