"""Discovery (RFC 7644 §4): what this server supports, its resource types and its schemas."""
from rest_framework.response import Response

from .errors import ScimError, not_found
from .parameters import list_body
from .schemas import RESOURCE_TYPES, SCHEMAS, resource_type_resource, schema_resource, service_provider_config
from .transport import ScimView


class ServiceProviderConfigView(ScimView):
    def get(self, request):
        return Response(service_provider_config(self.base_url))


class ResourceTypesView(ScimView):
    def get(self, request, name=None):
        if name is None:
            if self.params().get("filter"):
                raise ScimError(403, "ResourceTypes cannot be filtered.")
            return Response(list_body([resource_type_resource(n, self.base_url) for n in RESOURCE_TYPES]))
        if name not in RESOURCE_TYPES:
            raise not_found(f"No resource type {name!r}.")
        return Response(resource_type_resource(name, self.base_url))


class SchemasView(ScimView):
    def get(self, request, urn=None):
        if urn is None:
            if self.params().get("filter"):
                raise ScimError(403, "Schemas cannot be filtered.")
            return Response(list_body([schema_resource(u, self.base_url) for u in SCHEMAS]))
        found = next((u for u in SCHEMAS if u.lower() == urn.lower()), None)
        if found is None:
            raise not_found(f"No schema {urn!r}.")
        return Response(schema_resource(found, self.base_url))
