"""What this server publishes about itself (RFC 7643 §5–7, RFC 7644 §4), and the attribute tables
the filter, PATCH and body parsers look names up in.

Only attributes the server stores are published, each with the mutability and the returned
behaviour it really has, so a client (or a compliance checker) that reads /Schemas sees the truth.
Other RFC 7643 User attributes (name, title, phoneNumbers, …) are accepted and ignored, since
identity providers send them by default; names no schema defines are refused.
"""
# The extension's attributes: what the IdP asserts about a person's AI use, named by governance.
from governance.idp_assertions import AI_FEATURES_OPT_OUT, AI_TRAINING_CONSENT

USER_URN = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_URN = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE_USER_URN = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
AI_GOVERNANCE_URN = "urn:ietf:params:scim:schemas:extension:aigovernance:2.0:User"
LIST_RESPONSE_URN = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
PATCH_OP_URN = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SEARCH_REQUEST_URN = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
SERVICE_PROVIDER_CONFIG_URN = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
RESOURCE_TYPE_URN = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
SCHEMA_URN = "urn:ietf:params:scim:schemas:core:2.0:Schema"

MAX_RESULTS = 1000  # the most resources one list response holds
DEFAULT_COUNT = 100



def attribute(name, type_="string", *, multi=False, required=False, case_exact=False, mutability="readWrite",
              returned="default", uniqueness="none", sub=None, canonical=None, refs=None, description=""):
    spec = {"name": name, "type": type_, "multiValued": multi, "description": description, "required": required,
            "caseExact": case_exact, "mutability": mutability, "returned": returned, "uniqueness": uniqueness}
    if canonical:
        spec["canonicalValues"] = canonical
    if refs:
        spec["referenceTypes"] = refs
    if sub:
        spec["subAttributes"] = sub
    return spec


USER_ATTRIBUTES = [
    attribute("userName", required=True, uniqueness="server",
              description="Unique in the organization, compared without regard to case; usually the email."),
    attribute("displayName", description="The name shown in the console."),
    attribute("active", "boolean", required=True,
              description="Whether the account is active. Deactivation keeps the account and its history; "
                          "a deactivated account is still returned. Omitted on creation, it is true."),
    attribute("emails", "complex", multi=True, description=(
        "The account keeps one address: the primary one, else the one of type work, else the first. It is "
        "returned as the work address."), sub=[
        attribute("value", description="The address."),
        attribute("type", canonical=["work"], description="Always work on the way back."),
    ]),
    attribute("groups", "complex", multi=True, mutability="readOnly", description=(
        "The groups the account belongs to; changed through the Group resource."), sub=[
        attribute("value", mutability="readOnly", description="The group's id."),
        attribute("$ref", "reference", mutability="readOnly", refs=["Group"], case_exact=True),
        attribute("display", mutability="readOnly"),
        attribute("type", mutability="readOnly", canonical=["direct"]),
    ]),
]

GROUP_ATTRIBUTES = [
    attribute("displayName", required=True, uniqueness="server",
              description="Unique in the organization (exact comparison)."),
    attribute("members", "complex", multi=True, description="Accounts only: groups do not nest.", sub=[
        attribute("value", mutability="immutable", case_exact=True, description="The account's id."),
        attribute("$ref", "reference", mutability="immutable", refs=["User"], case_exact=True),
        attribute("type", mutability="immutable", canonical=["User"]),
        attribute("display", mutability="readOnly", description="The account's displayName, when it has one."),
    ]),
]

AI_GOVERNANCE_ATTRIBUTES = [
    attribute(AI_FEATURES_OPT_OUT, "boolean", description=(
        "true: every AI feature of the catalog is denied for this account by an account rule (reason "
        "'IdP attribute aiFeaturesOptOut'). When it stops being true (false, or removed) those rules are "
        "retired; their history stays. Returned as the IdP last set it.")),
    attribute(AI_TRAINING_CONSENT, "boolean", description=(
        "true: consent to first-party AI training on the account's customer content is recorded "
        "(mechanism idp_attribute) for each customer-content category. When it stops being true, what the "
        "IdP granted is revoked; a consent the person gave themself is not. Returned as the IdP last set it.")),
]

SCHEMAS = {
    USER_URN: {"id": USER_URN, "name": "User", "description": "A governed person of the organization.",
               "attributes": USER_ATTRIBUTES},
    GROUP_URN: {"id": GROUP_URN, "name": "Group", "description": "An IdP group or department.",
                "attributes": GROUP_ATTRIBUTES},
    AI_GOVERNANCE_URN: {"id": AI_GOVERNANCE_URN, "name": "AIGovernanceUser",
                        "description": "What the identity provider asserts about a person's AI data use.",
                        "attributes": AI_GOVERNANCE_ATTRIBUTES},
}

RESOURCE_TYPES = {
    "User": {"id": "User", "name": "User", "endpoint": "/Users", "description": "Governed accounts",
             "schema": USER_URN, "schemaExtensions": [{"schema": AI_GOVERNANCE_URN, "required": False}]},
    "Group": {"id": "Group", "name": "Group", "endpoint": "/Groups", "description": "Groups of accounts",
              "schema": GROUP_URN, "schemaExtensions": []},
}


def service_provider_config(base_url: str) -> dict:
    return {
        "schemas": [SERVICE_PROVIDER_CONFIG_URN],
        "patch": {"supported": True},
        "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": True, "maxResults": MAX_RESULTS},
        "changePassword": {"supported": False},
        "sort": {"supported": False},
        "etag": {"supported": True},
        "authenticationSchemes": [{
            "type": "oauthbearertoken", "name": "OAuth Bearer Token", "primary": True,
            "description": "A scim-scoped token of the organization (manage.py create_api_token --scope scim), "
                           "sent as 'Authorization: Bearer <token>'.",
        }],
        "meta": {"resourceType": "ServiceProviderConfig", "location": f"{base_url}/ServiceProviderConfig"},
    }


def schema_resource(urn: str, base_url: str) -> dict:
    return {"schemas": [SCHEMA_URN], **SCHEMAS[urn],
            "meta": {"resourceType": "Schema", "location": f"{base_url}/Schemas/{urn}"}}


def resource_type_resource(name: str, base_url: str) -> dict:
    return {"schemas": [RESOURCE_TYPE_URN], **RESOURCE_TYPES[name],
            "meta": {"resourceType": "ResourceType", "location": f"{base_url}/ResourceTypes/{name}"}}


# ---------------------------------------------------------------------------------------------------
# Lookups by lower-cased name (attribute names are case-insensitive, RFC 7643 §2.1).

def _by_name(attributes) -> dict:
    return {spec["name"].lower(): spec for spec in attributes}


COMMON_ATTRIBUTES = _by_name([
    attribute("id", mutability="readOnly", returned="always", case_exact=True, uniqueness="server"),
    attribute("externalId", case_exact=True),
    attribute("meta", "complex", mutability="readOnly", sub=[
        attribute("resourceType", mutability="readOnly"),
        attribute("created", "dateTime", mutability="readOnly"),
        attribute("lastModified", "dateTime", mutability="readOnly"),
        attribute("location", "reference", mutability="readOnly"),
        attribute("version", mutability="readOnly"),
    ]),
])
USER_BY_NAME = {**COMMON_ATTRIBUTES, **_by_name(USER_ATTRIBUTES)}
GROUP_BY_NAME = {**COMMON_ATTRIBUTES, **_by_name(GROUP_ATTRIBUTES)}
AI_GOVERNANCE_BY_NAME = _by_name(AI_GOVERNANCE_ATTRIBUTES)

# RFC 7643 §4.1 User attributes this server does not keep: accepted in bodies and PATCH, and dropped.
IGNORED_USER_ATTRIBUTES = frozenset({
    "name", "nickname", "profileurl", "title", "usertype", "preferredlanguage", "locale", "timezone",
    "password", "phonenumbers", "ims", "photos", "addresses", "entitlements", "roles", "x509certificates",
})
# Extension schemas an IdP may send that this server does not keep (Entra sends the enterprise one).
IGNORED_EXTENSIONS = frozenset({ENTERPRISE_USER_URN.lower()})


def sub_attribute(spec: dict, name: str) -> dict | None:
    for sub in spec.get("subAttributes", ()):
        if sub["name"].lower() == name.lower():
            return sub
    return None
