from django.contrib import admin
from django.urls import include, path, re_path
from csp.constants import SELF, UNSAFE_INLINE
from csp.decorators import csp_replace
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from config.api import api_not_found
from accounts.api.views import AccountViewSet, GroupViewSet
from audit.api.views import AuditEventViewSet
from flows.api.views import ExposureView, FlowBatchViewSet, FlowViewSet, WebhookEndpointViewSet
from governance.api.views import (AccountEffectivePolicyView, CatalogView, ConsentViewSet, DecisionView,
                                  PolicyRuleViewSet, TermsVersionViewSet)
from identity.views import SignInView
from reports.api.views import ReportScheduleViewSet, ReportViewSet

router = DefaultRouter(trailing_slash=True)
router.include_format_suffixes = False  # one URL per resource: `.json` suffixes reached handlers that take no format
router.include_root_view = False
router.register("groups", GroupViewSet, basename="group")
router.register("accounts", AccountViewSet, basename="account")
router.register("policy-rules", PolicyRuleViewSet, basename="policyrule")
router.register("audit-events", AuditEventViewSet, basename="auditevent")
router.register("terms-versions", TermsVersionViewSet, basename="termsversion")
router.register("consents", ConsentViewSet, basename="consent")
router.register("flows", FlowViewSet, basename="flow")
router.register("flow-batches", FlowBatchViewSet, basename="flowbatch")
router.register("webhooks", WebhookEndpointViewSet, basename="webhook")
router.register("report-schedules", ReportScheduleViewSet, basename="reportschedule")
router.register("reports", ReportViewSet, basename="report")

api_v1 = [
    path("catalog/", CatalogView.as_view(), name="catalog"),
    path("decisions/", DecisionView.as_view(), name="decisions"),
    path("exposure/", ExposureView.as_view(), name="exposure"),
    # beside the router's account routes, with the same id pattern
    re_path(r"^accounts/(?P<pk>[^/.]+)/effective-policy/$", AccountEffectivePolicyView.as_view(),
            name="account-effective-policy"),
    *router.urls,
]

urlpatterns = [
    path("api/v1/", include((api_v1, "api"), namespace="v1")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema", template_name="api/swagger_ui.html"),
         name="api-docs"),
    # Redoc writes its styles as <style> elements and searches in a blob: worker: this page alone allows both.
    path("api/redoc/", csp_replace({"style-src": [SELF, UNSAFE_INLINE], "worker-src": [SELF, "blob:"]})(
        SpectacularRedocView.as_view(url_name="schema", template_name="api/redoc.html")), name="api-redoc"),
    path("scim/v2/", include("scim.urls")),
    # Unknown API paths answer problem+json, in DEBUG too.
    re_path(r"^(api|scim)/", api_not_found),
    path("admin/", admin.site.urls),
    path("console/", include("console.urls")),
    path("login/", SignInView.as_view(), name="login"),  # the console's sign-in form (LOGIN_URL)
    path("", include("identity.urls")),
]

handler404 = "config.views.not_found"
handler500 = "config.views.server_error"
