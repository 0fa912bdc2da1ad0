from django.utils import timezone
from rest_framework import serializers

from accounts.models import Account, Group
from config.api import OrgScopedRelatedField, ReferenceField, StrictModelSerializer, StrictSerializer
from config.jsonvalue import BoundedJSONObjectField

from ..consent import ConsentRecord
from ..engine import Effective, PolicySnapshot, RuleRef
from ..models import AIFeature, ConsentEvent, DataCategory, PolicyRule, Purpose, TermsVersion
from ..selectors import catalog_entries


class CatalogKeyField(ReferenceField):
    """A catalog entry named by its key: global, or the caller organization's own."""

    def __init__(self, model, **kwargs):
        super().__init__(model, slug_field="key", **kwargs)

    def get_queryset(self):
        return catalog_entries(self.model, self.context["request"].user.organization)


class DataCategorySerializer(serializers.ModelSerializer):
    class Meta:
        model = DataCategory
        fields = ["key", "name", "kind", "description", "fides_key"]


class PurposeSerializer(serializers.ModelSerializer):
    class Meta:
        model = Purpose
        fields = ["key", "name", "description", "is_ai", "requires_individual_consent_for", "fides_key"]


class AIFeatureSerializer(serializers.ModelSerializer):
    data_categories = serializers.SlugRelatedField(slug_field="key", many=True, read_only=True)
    purposes = serializers.SlugRelatedField(slug_field="key", many=True, read_only=True)

    class Meta:
        model = AIFeature
        fields = ["key", "name", "description", "data_categories", "purposes", "fides_key"]


class CatalogSerializer(serializers.Serializer):
    data_categories = DataCategorySerializer(many=True)
    purposes = PurposeSerializer(many=True)
    features = AIFeatureSerializer(many=True)


class PolicyRuleSerializer(StrictModelSerializer):
    group = OrgScopedRelatedField(Group, required=False, allow_null=True, help_text="Group id (scope=group).")
    account = OrgScopedRelatedField(Account, slug_field="user_name", required=False, allow_null=True,
                                    help_text="Account user_name (scope=account).")
    feature = CatalogKeyField(AIFeature, required=False, allow_null=True)
    data_category = CatalogKeyField(DataCategory, required=False, allow_null=True)
    purpose = CatalogKeyField(Purpose, required=False, allow_null=True)

    class Meta:
        model = PolicyRule
        fields = ["id", "scope", "group", "account", "feature", "data_category", "purpose", "effect", "locked",
                  "reason", "expires_at", "created_by", "created_at", "updated_at"]
        read_only_fields = ["created_by", "created_at", "updated_at"]
        validators = []


class PolicyRuleUpdateSerializer(StrictModelSerializer):
    """What a rule may change after creation; its scope and target are fixed."""

    class Meta:
        model = PolicyRule
        fields = ["effect", "locked", "reason", "expires_at"]


class RuleDeleteSerializer(StrictSerializer):
    reason = serializers.CharField(required=False, allow_blank=True)


class AsOfSerializer(serializers.Serializer):
    """An optional `at`: an instant in the past (or now), never in the future."""

    at = serializers.DateTimeField(required=False, help_text="As of this instant; default now.")

    def validate_at(self, value):
        if value > timezone.now():
            raise serializers.ValidationError("Must not lie in the future.")
        return value


def rule_ref_payload(rule: RuleRef) -> dict:
    return {"rule": rule.id, "scope": rule.scope, "group": rule.group_id, "account": rule.account_id,
            "effect": rule.effect, "locked": rule.locked, "reason": rule.reason}


def effective_payload(value: Effective) -> dict:
    """One target's value and its explanation, as the API shows it."""
    return {
        **value.target.as_dict(),
        "effect": value.effect,
        "decided_by": value.decided_by,
        "explanation": {
            "default": value.default,
            "applied": [rule_ref_payload(rule) for rule in value.applied],
            "locked_by": rule_ref_payload(value.locked_by) if value.locked_by else None,
            "overridden_by_lock": [rule_ref_payload(rule) for rule in value.overridden],
            "denied_data_sharing": [
                {**pair.target.as_dict(), "applied": [rule_ref_payload(rule) for rule in pair.applied]}
                for pair in value.denied_pairs],
        },
    }


def effective_policy_payload(account, snapshot: PolicySnapshot, values: list[Effective]) -> dict:
    return {
        "account": account.user_name,
        "at": snapshot.at,
        "policy_version": snapshot.policy_version,
        "features": [effective_payload(v) for v in values if v.target.is_feature],
        "data_sharing": [effective_payload(v) for v in values if not v.target.is_feature],
    }


class RuleRefSerializer(serializers.Serializer):
    rule = serializers.IntegerField()
    scope = serializers.CharField()
    group = serializers.IntegerField(allow_null=True)
    account = serializers.IntegerField(allow_null=True)
    effect = serializers.CharField()
    locked = serializers.BooleanField()
    reason = serializers.CharField()


class ExplanationSerializer(serializers.Serializer):
    default = serializers.CharField()
    applied = RuleRefSerializer(many=True)
    locked_by = RuleRefSerializer(allow_null=True)
    overridden_by_lock = RuleRefSerializer(many=True)
    denied_data_sharing = serializers.ListField(child=serializers.DictField())


class EffectiveValueSerializer(serializers.Serializer):
    feature = serializers.CharField(required=False)
    data_category = serializers.CharField(required=False)
    purpose = serializers.CharField(required=False)
    effect = serializers.ChoiceField(choices=["allow", "deny"])
    decided_by = serializers.CharField()
    explanation = ExplanationSerializer()


class EffectivePolicySerializer(serializers.Serializer):
    """Documents the effective-policy response."""

    account = serializers.CharField()
    at = serializers.DateTimeField()
    policy_version = serializers.IntegerField()
    features = EffectiveValueSerializer(many=True)
    data_sharing = EffectiveValueSerializer(many=True)


class CoverageSerializer(StrictSerializer):
    data_category = CatalogKeyField(DataCategory)
    purpose = CatalogKeyField(Purpose)


class TermsVersionSerializer(StrictModelSerializer):
    covers = CoverageSerializer(many=True, required=False)
    text_sha256 = serializers.RegexField(r"^[0-9a-f]{64}$", help_text="SHA-256 of the terms text, lowercase hex.")

    class Meta:
        model = TermsVersion
        fields = ["id", "version", "effective_at", "text_sha256", "covers", "requires_reconsent", "published_at",
                  "published_by"]
        read_only_fields = ["published_at", "published_by"]
        validators = []

    def to_representation(self, terms):
        data = super().to_representation(terms)
        data["covers"] = [{"data_category": c.data_category.key, "purpose": c.purpose.key} for c in terms.covers.all()]
        return data


class ConsentSerializer(StrictModelSerializer):
    account = OrgScopedRelatedField(Account, slug_field="user_name")
    feature = CatalogKeyField(AIFeature, required=False, allow_null=True)
    data_category = CatalogKeyField(DataCategory, required=False, allow_null=True)
    purpose = CatalogKeyField(Purpose, required=False, allow_null=True)
    terms_version = OrgScopedRelatedField(TermsVersion, slug_field="version", required=False, allow_null=True,
                                          help_text="The version label of the terms the consent was given under.")
    evidence = BoundedJSONObjectField(required=False, help_text="e.g. the prompt shown, a request id, a signature.")
    occurred_at = serializers.DateTimeField(required=False, help_text="Past only, for importing history.")
    freely_given = serializers.BooleanField(read_only=True)
    stale = serializers.SerializerMethodField(help_text="A grant made stale by a later terms version, as of now.")

    class Meta:
        model = ConsentEvent
        fields = ["id", "account", "feature", "data_category", "purpose", "action", "mechanism", "freely_given",
                  "stale", "terms_version", "evidence", "occurred_at", "recorded_at", "recorded_by"]
        read_only_fields = ["recorded_at", "recorded_by"]

    def get_stale(self, consent) -> str | None:
        """The terms version that made this grant stale, if any."""
        index = self.context.get("reconsent")
        if index is None or consent.action != "grant":
            return None
        record = ConsentRecord(consent.pk, consent.action, consent.mechanism, consent.occurred_at,
                               terms_effective_at=consent.terms_version.effective_at if consent.terms_version else None)
        pairs = (self.context["feature_pairs"].get(consent.feature.key, ()) if consent.feature_id
                 else [(consent.data_category.key, consent.purpose.key)])
        now = timezone.now()
        stale = [s for pair in pairs if (s := index.stale_since(pair, record, now))]
        return stale[0].version if stale else None


class SimulationSerializer(serializers.Serializer):
    """Documents the what-if answer."""

    target = serializers.DictField()
    scope = serializers.CharField()
    effect = serializers.CharField()
    locked = serializers.BooleanField()
    replaces_rule = serializers.IntegerField(allow_null=True)
    accounts_evaluated = serializers.IntegerField()
    accounts_changed = serializers.IntegerField()
    by_group = serializers.ListField(child=serializers.DictField())
    accounts = serializers.ListField(child=serializers.DictField())
    accounts_truncated = serializers.BooleanField()
