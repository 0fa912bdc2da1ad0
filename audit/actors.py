"""Who did something, frozen as plain data so the audit trail never depends on a row that may change."""
from dataclasses import asdict, dataclass


@dataclass(frozen=True, slots=True)
class Actor:
    kind: str  # "user", "token", "system" or "idp"
    id: int | None
    name: str

    def as_dict(self) -> dict:
        return asdict(self)


SYSTEM = Actor("system", None, "system")


def user_actor(user) -> Actor:
    return Actor("user", user.pk, user.get_username())


def token_actor(token) -> Actor:
    return Actor("token", token.pk, token.name)
