"""Request bodies as Okta and Microsoft Entra ID send them.

Shapes follow the examples of Okta's "Okta and SCIM Version 2.0" reference and Microsoft's
"Develop and plan provisioning for a SCIM endpoint in Microsoft Entra ID" tutorial (with its
"Known issues ... SCIM 2.0 protocol compliance" page for the quirks): op names, value forms,
the attributes each sends by default. Identifiers are the tests' own.
"""
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
AI = "urn:ietf:params:scim:schemas:extension:aigovernance:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


# --- Okta ------------------------------------------------------------------------------------------

def okta_lookup(user_name):
    # Okta looks a user up by userName before creating it, paging with startIndex/count.
    return f'Users?filter=userName eq "{user_name}"&startIndex=1&count=100'


def okta_create_user(user_name="test.user@okta.local", given="Test", family="User", external_id="00ujl29u0le5T6Aj10h7"):
    return {
        "schemas": [USER],
        "userName": user_name,
        "name": {"givenName": given, "familyName": family},
        "emails": [{"primary": True, "value": user_name, "type": "work"}],
        "displayName": f"{given} {family}",
        "locale": "en-US",
        "externalId": external_id,
        "groups": [],
        "password": "1mz050nq",
        "active": True,
    }


def okta_replace_user(user_id, user_name="test.user@okta.local"):
    """Okta pushes profile updates as a PUT of the whole user, id included."""
    return {
        "schemas": [USER],
        "id": user_id,
        "userName": user_name,
        "name": {"givenName": "Another", "middleName": "Test", "familyName": "User"},
        "emails": [{"primary": True, "value": user_name, "type": "work"}],
        "displayName": "Another Test User",
        "locale": "en-US",
        "externalId": "00ujl29u0le5T6Aj10h7",
        "groups": [],
        "active": True,
    }


OKTA_DEACTIVATE = {"schemas": [PATCH], "Operations": [{"op": "replace", "value": {"active": False}}]}
OKTA_REACTIVATE = {"schemas": [PATCH], "Operations": [{"op": "replace", "value": {"active": True}}]}


def okta_create_group(display_name="Test SCIMv2", members=()):
    return {"schemas": [GROUP], "displayName": display_name,
            "members": [{"value": value, "display": display} for value, display in members]}


def okta_rename_group(group_id, display_name):
    # Okta sends the group's id back inside a path-less replace.
    return {"schemas": [PATCH], "Operations": [{"op": "replace", "value": {"id": group_id,
                                                                          "displayName": display_name}}]}


def okta_add_members(*members):
    return {"schemas": [PATCH], "Operations": [{"op": "add", "path": "members",
                                                "value": [{"value": v, "display": d} for v, d in members]}]}


def okta_remove_member(user_id):
    return {"schemas": [PATCH], "Operations": [{"op": "remove", "path": f'members[value eq "{user_id}"]'}]}


def okta_replace_group(group_id, display_name, members):
    return {"schemas": [GROUP], "id": group_id, "displayName": display_name,
            "members": [{"value": value, "display": display} for value, display in members]}


# --- Microsoft Entra ID ----------------------------------------------------------------------------

ENTRA_TEST_CONNECTION = 'Users?filter=userName eq "non-existent user"'


def entra_create_user(user_name, external_id, work_email):
    return {
        "schemas": [USER, ENTERPRISE],
        "externalId": external_id,
        "userName": user_name,
        "active": True,
        "emails": [{"primary": True, "type": "work", "value": work_email}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
        "roles": [],
        ENTERPRISE: {"department": "Sales", "employeeNumber": "701984"},
    }


def entra_update_multi_valued(new_email):
    return {"schemas": [PATCH], "Operations": [
        {"op": "Replace", "path": 'emails[type eq "work"].value', "value": new_email},
        {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"},
    ]}


def entra_update_single_valued(user_name):
    return {"schemas": [PATCH], "Operations": [{"op": "Replace", "path": "userName", "value": user_name}]}


# Entra disables with a boolean, or, in jobs without the compliance fix, with the string "False".
ENTRA_DISABLE = {"schemas": [PATCH], "Operations": [{"op": "Replace", "path": "active", "value": False}]}
ENTRA_DISABLE_AS_STRING = {"schemas": [PATCH], "Operations": [{"op": "Replace", "path": "active", "value": "False"}]}


def entra_create_group(display_name, external_id):
    return {
        "schemas": [GROUP, "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
        "externalId": external_id,
        "displayName": display_name,
        "meta": {"resourceType": "Group"},
    }


def entra_group_lookup(display_name):
    return f'Groups?excludedAttributes=members&filter=displayName eq "{display_name}"'


def entra_add_members(*user_ids):
    return {"schemas": [PATCH], "Operations": [{"op": "Add", "path": "members",
                                                "value": [{"$ref": None, "value": v} for v in user_ids]}]}


def entra_remove_members(*user_ids):
    """Entra removes members by a value list on the `members` path."""
    return {"schemas": [PATCH], "Operations": [{"op": "Remove", "path": "members",
                                                "value": [{"$ref": None, "value": v} for v in user_ids]}]}


def entra_remove_member_by_filter(user_id):
    return {"schemas": [PATCH], "Operations": [{"op": "Remove", "path": f'members[value eq "{user_id}"]'}]}


def entra_rename_group(display_name):
    return {"schemas": [PATCH], "Operations": [{"op": "Replace", "path": "displayName", "value": display_name}]}
