"""Filter fields shared by the API's filter sets, and the filter backend that makes every list strict."""
import re
from datetime import timezone

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.db import models
from django_filters.fields import IsoDateTimeField
from django_filters.rest_framework import DjangoFilterBackend
from django_filters.utils import get_model_field, translate_validation
from rest_framework import exceptions
from rest_framework.settings import api_settings

from .api import MAX_ID


class UTCDateTimeField(IsoDateTimeField):
    """An ISO 8601 instant, turned to UTC: any offset Python accepts, including ones PostgreSQL does not."""

    def clean(self, value):
        instant = super().clean(value)
        if instant is None:
            return None
        try:
            return instant.astimezone(timezone.utc)
        except OverflowError:
            raise ValidationError("Out of range.", code="invalid") from None


class UTCDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UTCDateTimeField


class StrictBooleanField(forms.Field):
    """`true` or `false`, nothing else: django-filter would read `?active=maybe` as no filter at all."""

    def to_python(self, value):
        if value in self.empty_values:
            return None
        if value in ("true", "false"):
            return value == "true"
        raise ValidationError("Must be true or false.", code="invalid")


class BoundedIntegerField(forms.Field):
    """Digits only, within the column's range: no 14.0, no 1e3, no number the database cannot compare."""

    def __init__(self, *, min_value, max_value, **kwargs):
        self.min_value, self.max_value = min_value, max_value
        super().__init__(**kwargs)

    def to_python(self, value):
        if value in self.empty_values:
            return None
        if not re.fullmatch(r"-?[0-9]{1,19}", value) or not self.min_value <= int(value) <= self.max_value:
            raise ValidationError(f"Must be an integer from {self.min_value} to {self.max_value}.", code="invalid")
        return int(value)


class IntegerFilter(django_filters.NumberFilter):
    field_class = BoundedIntegerField

    def __init__(self, *args, min_value=-MAX_ID - 1, max_value=MAX_ID, **kwargs):
        super().__init__(*args, min_value=min_value, max_value=max_value, **kwargs)

    def get_max_validator(self):
        return None

    def schema(self) -> dict:
        return {"type": "integer", "minimum": self.extra["min_value"], "maximum": self.extra["max_value"]}


def strict_filter(filter_, model):
    """The strict counterpart of one filter: booleans and integers (ids above all) parse strictly."""
    if isinstance(filter_, IntegerFilter) or filter_.method is not None:
        return filter_
    if isinstance(filter_, django_filters.BooleanFilter):
        strict = _rebuilt(filter_, django_filters.BooleanFilter)
        strict.field_class = StrictBooleanField
        return strict
    if isinstance(filter_, django_filters.ModelChoiceFilter):
        return _rebuilt(filter_, IntegerFilter, min_value=1)
    if isinstance(filter_, django_filters.NumberFilter):
        field = get_model_field(model, filter_.field_name)
        if field is not None and (field.is_relation or field.primary_key):
            return _rebuilt(filter_, IntegerFilter, min_value=1)
        if isinstance(field, models.IntegerField):
            return _rebuilt(filter_, IntegerFilter)
    return filter_


def _rebuilt(filter_, cls, **extra):
    if "help_text" in filter_.extra:
        extra["help_text"] = filter_.extra["help_text"]
    return cls(field_name=filter_.field_name, lookup_expr=filter_.lookup_expr, label=filter_._label,
               distinct=filter_.distinct, exclude=filter_.exclude, **extra)


class StrictFilterBackend(DjangoFilterBackend):
    """Every list's filters, strict: a value that does not parse, and a query parameter the list does
    not take, are a 400 naming the parameter, never a 500 and never silently no filter."""

    def get_filterset(self, request, queryset, view):
        filterset = super().get_filterset(request, queryset, view)
        if filterset is not None:
            model = filterset._meta.model or queryset.model
            filterset.filters = {name: strict_filter(filter_, model) for name, filter_ in filterset.filters.items()}
            for filter_ in filterset.filters.values():
                filter_.parent = filterset
        return filterset

    def filter_queryset(self, request, queryset, view):
        filterset = self.get_filterset(request, queryset, view)
        known = set(filterset.filters if filterset is not None else ()) | {api_settings.URL_FORMAT_OVERRIDE}
        paginator = getattr(view, "paginator", None)
        known.update(getattr(paginator, name, None) for name in ("cursor_query_param", "page_size_query_param"))
        unknown = sorted(set(request.query_params) - known)
        if unknown:
            raise exceptions.ValidationError({name: ["Unknown query parameter."] for name in unknown})
        if filterset is None:
            return queryset
        if not filterset.is_valid():
            raise translate_validation(filterset.errors)
        return filterset.qs
