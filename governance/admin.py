from django.contrib import admin

from config.admin import ReadOnlyAdmin

from .models import AIFeature, DataCategory, PolicyRule, Purpose, TermsVersion


@admin.register(DataCategory)
class DataCategoryAdmin(ReadOnlyAdmin):
    list_display = ["key", "name", "kind", "fides_key", "organization"]


@admin.register(Purpose)
class PurposeAdmin(ReadOnlyAdmin):
    list_display = ["key", "name", "is_ai", "fides_key", "organization"]


@admin.register(AIFeature)
class AIFeatureAdmin(ReadOnlyAdmin):
    list_display = ["key", "name", "fides_key", "organization"]


@admin.register(PolicyRule)
class PolicyRuleAdmin(ReadOnlyAdmin):
    list_display = ["id", "organization", "scope", "feature", "data_category", "purpose", "effect", "locked",
                    "deleted_at"]
    list_filter = ["organization", "scope", "effect", "locked"]


@admin.register(TermsVersion)
class TermsVersionAdmin(ReadOnlyAdmin):
    list_display = ["version", "organization", "effective_at", "requires_reconsent"]
