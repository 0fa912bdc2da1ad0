import django_filters
from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from config.filters import UTCDateTimeFilter
from config.api import OrgAPIMixin

from .. import selectors
from ..models import AuditEvent
from .serializers import AuditDigestSerializer, AuditEventSerializer, VerificationSerializer


class AuditEventFilter(django_filters.FilterSet):
    kind = django_filters.CharFilter(help_text="e.g. policy.changed, consent.granted, flow.violation")
    account = django_filters.CharFilter(field_name="subject_account__user_name", help_text="The account's user_name.")
    actor = django_filters.CharFilter(field_name="actor_name", help_text="The actor's name (a login or token).")
    occurred_after = UTCDateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    occurred_before = UTCDateTimeFilter(field_name="occurred_at", lookup_expr="lt")

    class Meta:
        model = AuditEvent
        fields = ["kind", "account", "actor", "occurred_after", "occurred_before"]


class AuditEventViewSet(OrgAPIMixin, viewsets.ReadOnlyModelViewSet):
    """The organization's hash-chained audit trail, newest first. Read-only for everyone."""

    queryset = AuditEvent.objects.all()
    serializer_class = AuditEventSerializer
    filterset_class = AuditEventFilter
    lookup_field = "seq"

    @extend_schema(responses=VerificationSerializer)
    @action(detail=False, methods=["get"], filter_backends=[], pagination_class=None)
    def verify(self, request):
        """Recompute the whole chain against its signed digests; names the first invalid seq.

        Beside `valid`: how many changes wait to be chained, since when, and whether the chain is
        stalled on a change it cannot chain (then `stalled` names it and the error)."""
        result = selectors.verify_chain(self.organization).as_dict()
        result.update(selectors.pipeline_state(self.organization))
        digest = selectors.latest_digest(self.organization)
        result["latest_digest"] = AuditDigestSerializer(digest).data if digest else None
        return Response(result)
