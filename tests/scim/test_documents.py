"""PATCH on multi-valued attributes, applied to a document: values are matched as SCIM compares them
(members exactly, emails without regard to case), and a big group costs no more than its size."""
from scim.documents import GROUP, USER, Document

from .conftest import patch_op


def group_with(*member_ids):
    return Document(GROUP, {"displayName": "Sales", "externalId": None,
                            "members": [{"value": str(pk)} for pk in member_ids]}, "1")


def values(document, name="members"):
    return [item["value"] for item in document.values[name]]


def test_adding_members_keeps_one_of_each_even_when_sent_twice():
    document = group_with(1, 2)
    document.patch(patch_op({"op": "add", "path": "members",
                             "value": [{"value": "2"}, {"value": "3"}, {"value": "3"}, {"value": "4"}]}))
    assert values(document) == ["1", "2", "3", "4"]


def test_removing_members_by_a_list_of_values_leaves_the_others_and_ignores_strangers():
    document = group_with(1, 2, 3)
    document.patch(patch_op({"op": "Remove", "path": "members", "value": [{"value": "1"}, {"value": "9"}]}))
    assert values(document) == ["2", "3"]


def test_member_values_are_compared_exactly_and_emails_without_regard_to_case():
    document = Document(USER, {"userName": "ada@acme.test", "displayName": None, "externalId": None, "active": True,
                               "emails": [{"value": "Ada@Acme.test", "type": "work"}]}, "1")
    document.patch(patch_op({"op": "add", "path": "emails", "value": [{"value": "ADA@ACME.TEST"}]}))
    assert values(document, "emails") == ["Ada@Acme.test"]
    document.patch(patch_op({"op": "remove", "path": "emails", "value": [{"value": "ada@acme.TEST"}]}))
    assert values(document, "emails") == []


def test_a_large_group_takes_a_batch_of_members_in_one_pass():
    document = group_with(*range(20_000))
    document.patch(patch_op({"op": "add", "path": "members",
                             "value": [{"value": str(pk)} for pk in range(19_900, 21_000)]}))
    assert len(document.values["members"]) == 21_000
    document.patch(patch_op({"op": "remove", "path": "members",
                             "value": [{"value": str(pk)} for pk in range(0, 21_000, 2)]}))
    assert values(document)[:3] == ["1", "3", "5"] and len(document.values["members"]) == 10_500
