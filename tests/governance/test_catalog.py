import pytest

from governance.models import AIFeature, DataCategory, Purpose

pytestmark = pytest.mark.django_db

CATEGORIES = {"content.audio", "content.video", "content.chat", "content.transcript", "content.files",
              "content.whiteboard", "content.screen_share", "telemetry.usage", "telemetry.diagnostics",
              "telemetry.device", "telemetry.meeting_metadata", "telemetry.participants", "telemetry.engagement",
              "telemetry.location"}
PURPOSES = {"service.provision", "service.improvement", "ai.inference", "ai.training.first_party",
            "ai.training.third_party", "marketing", "security.fraud_detection"}
FEATURES = {"meeting_summary", "chat_compose", "transcription", "smart_recording", "meeting_questions"}


def test_the_migration_seeds_every_key_of_the_design_with_a_fides_key():
    for model, keys in ((DataCategory, CATEGORIES), (Purpose, PURPOSES), (AIFeature, FEATURES)):
        seeded = dict(model.objects.filter(organization=None).values_list("key", "fides_key"))
        assert keys <= set(seeded)
        assert all(seeded[key] for key in keys)


def test_training_on_content_and_any_third_party_training_need_individual_consent():
    needs = dict(Purpose.objects.values_list("key", "requires_individual_consent_for"))
    assert "customer_content" in needs["ai.training.first_party"]
    assert set(needs["ai.training.third_party"]) == {"customer_content", "service_generated"}
    assert needs["ai.inference"] == []


def test_the_catalog_api_lists_features_with_what_they_read(api):
    body = api.get("/api/v1/catalog/").json()
    features = {f["key"]: f for f in body["features"]}
    assert set(features) == FEATURES
    assert features["transcription"]["data_categories"] == ["content.audio"]
    assert {c["key"] for c in body["data_categories"]} == CATEGORIES
