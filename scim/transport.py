"""How SCIM requests come in and answers go out (RFC 7644 §3.1, §3.12, §3.14): JSON bodies whatever
their content type, application/scim+json always, the IdP's token and its rate, every failure in the
SCIM error shape (`errors`), and ETag comparison. Every SCIM view is a `ScimView`."""
from django.urls import reverse
import orjson
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.views import APIView

from accounts.throttling import ScimTokenRateThrottle
from audit.actors import Actor
from config.formats import JSONRenderer

from .authentication import ScimTokenAuthentication, ScimTokenPermission
from .errors import SCIM_CONTENT_TYPE, ScimError, bad_request, scim_exception_handler

MAX_PAYLOAD_BYTES = 10 * 2**20


class ScimJSONParser(BaseParser):
    """JSON bodies, whatever content type the client names (IdPs send application/scim+json)."""

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read(MAX_PAYLOAD_BYTES + 1) if stream is not None else b""
        if len(raw) > MAX_PAYLOAD_BYTES:
            raise ScimError(413, f"The body is larger than {MAX_PAYLOAD_BYTES} bytes.")
        if not raw.strip():
            return {}
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as error:
            raise bad_request(f"The body is not valid JSON: {error}", "invalidSyntax") from None


class ScimRenderer(JSONRenderer):
    media_type = SCIM_CONTENT_TYPE
    format = "scim"
    charset = None


class ScimNegotiation(BaseContentNegotiation):
    """Always application/scim+json (RFC 7644 §3.1): an Accept header never turns an answer into a 406."""

    def select_parser(self, request, parsers):
        return parsers[0]

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class ScimView(APIView):
    authentication_classes = [ScimTokenAuthentication]
    permission_classes = [ScimTokenPermission]
    parser_classes = [ScimJSONParser]
    renderer_classes = [ScimRenderer]
    content_negotiation_class = ScimNegotiation
    throttle_classes = [ScimTokenRateThrottle]  # 429 with Retry-After, which Okta and Entra honour
    schema = None  # not part of the REST API's OpenAPI document

    def get_exception_handler(self):
        return scim_exception_handler

    @property
    def organization(self):
        return self.request.user.organization

    @property
    def actor(self) -> Actor:
        """Writes are attributed to the identity provider holding the token (DESIGN §7: drift)."""
        token = self.request.auth
        return Actor("idp", token.pk, token.name)

    @property
    def base_url(self) -> str:
        return self.request.build_absolute_uri(reverse("scim:root")).rstrip("/")

    def params(self) -> dict:
        """Query parameters by lower-cased name (Entra appends its own, such as aadOptscim062020)."""
        return {key.lower(): value for key, value in self.request.query_params.items()}


class NotImplementedView(ScimView):
    """Bulk and /Me are not offered (ServiceProviderConfig says so for Bulk)."""

    def _refuse(self, request, *args, **kwargs):
        raise ScimError(501, f"{request.path} is not implemented by this server.")

    get = post = put = patch = delete = _refuse


def etag_matches(header: str, version: str) -> bool:
    """Weak comparison (RFC 9110 §8.8.3.2): W/ prefixes are ignored; '*' matches any version."""
    def bare(tag):
        tag = tag.strip()
        return tag[2:] if tag.startswith("W/") else tag
    tags = [bare(tag) for tag in header.split(",")]
    return "*" in tags or bare(version) in tags
