import django_filters
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from config.filters import UTCDateTimeFilter
from config.api import MAX_ID, OrgAPIMixin

from .. import proofs, selectors
from ..models import AuditEvent
from .proofs import NOT_COVERED, NOT_FOUND, TREE_HEAD, answered, id_parameters
from .serializers import (AuditDigestSerializer, AuditEventSerializer, ConsistencyProofSerializer,
                          InclusionProofSerializer, LatestTreeHeadSerializer, TreeHeadSerializer,
                          VerificationSerializer)

HEAD_ID = {"type": "integer", "minimum": 1, "maximum": MAX_ID}


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
        head, consistent = proofs.last_two_heads_consistent(self.organization)
        result["latest_tree_head"] = LatestTreeHeadSerializer(head).data if head else None
        result["consistent_with_previous"] = consistent
        return Response(result)

    @extend_schema(parameters=[TREE_HEAD], responses={200: InclusionProofSerializer, 404: NOT_FOUND,
                                                      409: NOT_COVERED})
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=None)
    def proof(self, request, seq=None):
        """The inclusion proof file of this event (its body is the entry) against a signed tree head.

        Check it offline with `tools/verify_audit_log.py inclusion FILE --public-key KEY.pem`. An event newer
        than the latest signed tree head is a 409 until the next one is signed."""
        query = id_parameters(request, optional=["tree_head"])
        event = self.get_object()
        return Response(answered(lambda: proofs.event_proof(self.organization, event, digest_id=query["tree_head"])))

    @extend_schema(responses=TreeHeadSerializer(many=True))
    @action(detail=False, methods=["get"], url_path="tree-heads", filter_backends=[])
    def tree_heads(self, request):
        """The organization's signed tree heads (format-2 digests), newest first."""
        id_parameters(request, others=[self.paginator.cursor_query_param, self.paginator.page_size_query_param])
        heads = proofs.tree_heads(self.organization)
        page = self.paginate_queryset(heads)
        return self.get_paginated_response(TreeHeadSerializer(page, many=True).data)

    @extend_schema(parameters=[OpenApiParameter("first", HEAD_ID, required=True,
                                                description="The earlier signed tree head's id."),
                               OpenApiParameter("second", HEAD_ID,
                                                description="The later one's; default: the latest.")],
                   responses={200: ConsistencyProofSerializer, 404: NOT_FOUND, 409: NOT_COVERED})
    @action(detail=False, methods=["get"], filter_backends=[], pagination_class=None)
    def consistency(self, request):
        """The consistency proof file between two signed tree heads: the earlier tree is a prefix of the later.

        Check it offline with `tools/verify_audit_log.py consistency FILE --public-key KEY.pem`. Given in the
        other order, the heads are answered smaller first."""
        query = id_parameters(request, required=["first"], optional=["second"])
        return Response(answered(lambda: proofs.consistency_proof(self.organization, first_id=query["first"],
                                                                  second_id=query["second"])))
