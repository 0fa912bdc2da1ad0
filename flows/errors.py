"""The flows app's domain errors; the API turns them into problem+json answers."""


class InvalidBatch(ValueError):
    """A posted batch refused whole. `errors` maps each offending field (`flows[12].purpose`) to its messages."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__(f"{len(errors)} invalid field(s): {', '.join(list(errors)[:5])}")
        self.errors = errors
