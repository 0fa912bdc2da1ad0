"""Mounted at /scim/v2/ (config/urls.py). Resource names as RFC 7644 spells them; a trailing slash is tolerated."""
from django.urls import path, re_path

from .discovery import ResourceTypesView, SchemasView, ServiceProviderConfigView
from .errors import scim_not_found
from .groups import GroupsView
from .resource_views import RootSearchView
from .transport import NotImplementedView
from .users import UsersView

app_name = "scim"

urlpatterns = [
    path("", scim_not_found, name="root"),
    re_path(r"^ServiceProviderConfig/?$", ServiceProviderConfigView.as_view(), name="service-provider-config"),
    re_path(r"^ResourceTypes/?$", ResourceTypesView.as_view(), name="resource-types"),
    re_path(r"^ResourceTypes/(?P<name>[^/]+)/?$", ResourceTypesView.as_view(), name="resource-type"),
    re_path(r"^Schemas/?$", SchemasView.as_view(), name="schemas"),
    re_path(r"^Schemas/(?P<urn>[^/]+)/?$", SchemasView.as_view(), name="schema"),
    re_path(r"^Users/?$", UsersView.as_view(), name="users"),
    re_path(r"^Users/(?P<resource_id>[^/]+)/?$", UsersView.as_view(), name="user"),
    re_path(r"^Groups/?$", GroupsView.as_view(), name="groups"),
    re_path(r"^Groups/(?P<resource_id>[^/]+)/?$", GroupsView.as_view(), name="group"),
    re_path(r"^\.search/?$", RootSearchView.as_view(), name="search"),
    re_path(r"^(?:Bulk|Me)/?$", NotImplementedView.as_view(), name="not-implemented"),
    re_path(r"^", scim_not_found),
]
