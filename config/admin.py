from django.conf import settings
from django.contrib import admin
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.views import redirect_to_login
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_http_methods


class ReadOnlyAdmin(admin.ModelAdmin):
    """Changes go through the services, which audit them; the admin site only reads."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ConsoleSignInAdminSite(admin.AdminSite):
    """The platform staff's admin site, without a sign-in form of its own.

    Django's admin login would be a second door that the console's throttle does not guard, so its
    URL only points at the one sign-in page (`settings.LOGIN_URL`), carrying `next` along. A form
    posted here is sent on with 307, method and body kept, so it meets that page's throttle too.
    The site itself stays staff-only: `has_permission` is Django's.
    """

    @method_decorator([never_cache, csrf_protect, require_http_methods(["GET", "HEAD", "POST"])])
    @login_not_required
    def login(self, request, extra_context=None):
        if request.method == "GET" and self.has_permission(request):
            return super().login(request, extra_context)  # Django's: on to the admin index
        target = (request.POST.get(REDIRECT_FIELD_NAME) or request.GET.get(REDIRECT_FIELD_NAME)
                  or reverse("admin:index", current_app=self.name))
        response = redirect_to_login(target, settings.LOGIN_URL)
        if request.method not in ("GET", "HEAD"):
            response.status_code = 307
        return response
