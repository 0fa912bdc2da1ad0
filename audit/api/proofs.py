"""What the proof endpoints of the API share (audit's and flows'): their query parameters and their errors."""
import re

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import exceptions, status

from config.api import MAX_ID

from .. import proofs

NOT_COVERED = OpenApiResponse(description="No signed tree head covers it yet: the next one will (the detail says "
                                          "when).")
NOT_FOUND = OpenApiResponse(description="No such object, or no such signed tree head, in your organization.")
TREE_HEAD = OpenApiParameter("tree_head", {"type": "integer", "minimum": 1, "maximum": MAX_ID}, description=(
    "The id of the signed tree head to prove against (GET /api/v1/audit-events/tree-heads/); default: the latest."))


class NotCoveredYet(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "Not covered yet"


def id_parameters(request, *, required=(), optional=(), others=()) -> dict[str, int | None]:
    """The query's id parameters, each a decimal id; a malformed one, or a parameter neither they nor
    `others` (checked elsewhere, such as a page's cursor) name, is a 400 naming it."""
    errors, values = {}, {}
    for name in sorted(set(request.query_params) - {*required, *optional, *others, "format"}):
        errors[name] = ["Unknown query parameter."]
    for name in (*required, *optional):
        raw = request.query_params.get(name)
        if raw is None:
            if name in required:
                errors[name] = ["This parameter is required."]
            values[name] = None
        elif not re.fullmatch(r"[0-9]{1,19}", raw) or not 1 <= int(raw) <= MAX_ID:
            errors[name] = [f"Must be an id: an integer from 1 to {MAX_ID}."]
        else:
            values[name] = int(raw)
    if errors:
        raise exceptions.ValidationError(errors)
    return values


def answered(build):
    """Call `build()` for a proof: a leaf not covered yet is a 409, a tree head not in the organization a 404."""
    try:
        return build()
    except proofs.NotCovered as exc:
        raise NotCoveredYet(str(exc)[:1].upper() + str(exc)[1:]) from None
    except proofs.UnknownTreeHead as exc:
        raise exceptions.NotFound(str(exc)[:1].upper() + str(exc)[1:] + ".") from None
