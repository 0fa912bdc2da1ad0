"""The OIDC client secret at rest: Fernet (AES-128-CBC + HMAC-SHA256) from `cryptography`, with
`MultiFernet` so that keys rotate (settings.SSO_SECRET_KEYS, newest first). Without keys set, one
key is derived from SECRET_KEY with HKDF, so a development setup needs nothing more."""
import base64

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings


class SecretUnreadable(Exception):
    """The stored secret was encrypted with a key that is no longer configured."""


def _fernet() -> MultiFernet:
    keys = list(settings.SSO_SECRET_KEYS)
    if not keys:
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                       info=b"identity.sso-client-secret").derive(settings.SECRET_KEY.encode())
        keys = [base64.urlsafe_b64encode(derived)]
    return MultiFernet([Fernet(key) for key in keys])


def seal(secret: str) -> str:
    return _fernet().encrypt(secret.encode()).decode("ascii")


def unseal(sealed: str) -> str:
    try:
        return _fernet().decrypt(sealed.encode("ascii")).decode()
    except InvalidToken:
        raise SecretUnreadable("The client secret cannot be decrypted with the configured SSO_SECRET_KEYS; "
                               "enter it again on the Settings page.") from None
