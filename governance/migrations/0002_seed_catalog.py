"""Seed the global catalog (DESIGN §2), each key mapped to its nearest fideslang taxonomy key.

The data is frozen here on purpose: a later catalog change is a new migration.
"""
from django.db import migrations

CONTENT, GENERATED = "customer_content", "service_generated"

CATEGORIES = [
    # key, name, kind, fides key, description
    ("content.audio", "Meeting audio", CONTENT, "user.content.private", "Recorded or live audio of meetings and calls."),
    ("content.video", "Meeting video", CONTENT, "user.content.self_image", "Camera video, in which people are recognisable."),
    ("content.chat", "Chat messages", CONTENT, "user.content.private", "Messages people write in chats and meetings."),
    ("content.transcript", "Transcripts and captions", CONTENT, "user.content.private", "Text made from what people said."),
    ("content.files", "Shared files", CONTENT, "user.content.private", "Files people upload or share."),
    ("content.whiteboard", "Whiteboards", CONTENT, "user.content.private", "What people draw and write on whiteboards."),
    ("content.screen_share", "Screen shares", CONTENT, "user.content.private", "What people show of their screens."),
    ("telemetry.usage", "Usage and feature telemetry", GENERATED, "user.behavior", "Which features people use, when and how often."),
    ("telemetry.diagnostics", "Diagnostics", GENERATED, "system.operations", "Errors, crash reports and performance data."),
    ("telemetry.device", "Device data", GENERATED, "user.device", "Device, operating system, client version, identifiers."),
    ("telemetry.meeting_metadata", "Meeting metadata", GENERATED, "user.behavior", "Meeting titles, invitations, duration."),
    ("telemetry.participants", "Participants and contacts", GENERATED, "user.contact", "Who meets and talks with whom."),
    ("telemetry.engagement", "Engagement and attention", GENERATED, "user.behavior", "Attention, speaking time, reactions."),
    ("telemetry.location", "Coarse location", GENERATED, "user.location.imprecise", "Region or city derived from the network."),
]

PURPOSES = [
    # key, name, is_ai, needs individual consent for these kinds, fides key, description
    ("service.provision", "Provide the service", False, [], "essential.service", "Run the service people signed up for."),
    ("service.improvement", "Improve the service", False, [], "functional.service.improve", "Analyse and improve the service, without AI training."),
    ("ai.inference", "Run AI features", True, [], "functional.service", "Run an AI feature on the data (summaries, compose, transcription)."),
    ("ai.training.first_party", "Train the vendor's AI models", True, [CONTENT], "train_ai_system", "Train or fine-tune the vendor's own models."),
    ("ai.training.third_party", "Train third parties' AI models", True, [CONTENT, GENERATED], "train_ai_system", "Share data so other companies train their models."),
    ("marketing", "Marketing", False, [], "marketing", "Advertising and marketing."),
    ("security.fraud_detection", "Security and fraud detection", False, [], "essential.fraud_detection", "Detect abuse, fraud and security incidents."),
]

FEATURES = [
    # key, name, fides key, categories read, purposes used for, description
    ("meeting_summary", "Meeting summary", "functional.service",
     ["content.audio", "content.transcript", "content.chat", "telemetry.meeting_metadata", "telemetry.participants"],
     ["ai.inference"], "Summarises a meeting for its participants."),
    ("chat_compose", "Chat compose", "functional.service", ["content.chat"], ["ai.inference"],
     "Drafts and rewrites chat messages."),
    ("transcription", "Transcription", "functional.service", ["content.audio"], ["ai.inference"],
     "Turns meeting audio into a transcript and live captions."),
    ("smart_recording", "Smart recording", "functional.service",
     ["content.audio", "content.video", "content.screen_share", "content.transcript"], ["ai.inference"],
     "Chapters, highlights and next steps in recordings."),
    ("meeting_questions", "Meeting questions", "functional.service",
     ["content.transcript", "content.chat", "telemetry.meeting_metadata"], ["ai.inference"],
     "Answers questions about a meeting while it runs."),
]


def seed(apps, schema_editor):
    DataCategory = apps.get_model("governance", "DataCategory")
    Purpose = apps.get_model("governance", "Purpose")
    AIFeature = apps.get_model("governance", "AIFeature")
    categories = {}
    for key, name, kind, fides_key, description in CATEGORIES:
        categories[key], _ = DataCategory.objects.update_or_create(
            organization=None, key=key,
            defaults={"name": name, "kind": kind, "fides_key": fides_key, "description": description})
    purposes = {}
    for key, name, is_ai, kinds, fides_key, description in PURPOSES:
        purposes[key], _ = Purpose.objects.update_or_create(
            organization=None, key=key,
            defaults={"name": name, "is_ai": is_ai, "requires_individual_consent_for": kinds,
                      "fides_key": fides_key, "description": description})
    for key, name, fides_key, category_keys, purpose_keys, description in FEATURES:
        feature, _ = AIFeature.objects.update_or_create(
            organization=None, key=key, defaults={"name": name, "fides_key": fides_key, "description": description})
        feature.data_categories.set([categories[k] for k in category_keys])
        feature.purposes.set([purposes[k] for k in purpose_keys])


class Migration(migrations.Migration):
    dependencies = [("governance", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
