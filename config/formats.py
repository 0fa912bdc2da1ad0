"""The API's one JSON renderer and parser, on orjson.

Kept apart from config/api.py: DRF imports these while it builds its own views, so this module
must not import rest_framework.views.
"""
import orjson
from rest_framework import exceptions, parsers, renderers
from rest_framework.utils.encoders import JSONEncoder as DRFJSONEncoder


class JSONRenderer(renderers.JSONRenderer):
    """DRF's JSON renderer on orjson: the same output, several times faster on large answers."""

    _fallback = DRFJSONEncoder()

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        return orjson.dumps(data, default=self._fallback.default,
                            option=orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS)


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser on orjson: large batches (10,000 decisions or flows) parse several times faster."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return orjson.loads(stream.read() if stream is not None else b"")
        except orjson.JSONDecodeError as exc:
            raise exceptions.ParseError(f"JSON parse error - {exc}") from None
