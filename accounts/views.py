from django.contrib.auth.decorators import login_required
from django.http import HttpResponseBadRequest
from django.shortcuts import redirect
from django.views.decorators.http import require_GET, require_POST

from .authentication import ConsoleSessionAuthentication
from .models import OrgRole


@require_GET
@login_required
def home(request):
    return redirect("console:overview")


@require_POST
@login_required
def switch_organization(request):
    org_role = OrgRole.objects.filter(user=request.user, organization_id=request.POST.get("organization"))
    if not org_role.exists():
        return HttpResponseBadRequest("Not a member of that organization.")
    request.session[ConsoleSessionAuthentication.SESSION_KEY] = org_role.get().organization_id
    return redirect("home")
