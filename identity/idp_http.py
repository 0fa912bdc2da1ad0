"""Reading a JSON document from an organization's IdP (discovery, keys): the URL behind the SSRF
guard (public, or named in SSO_ALLOWED_HOSTS; HTTPS in production), 5 seconds at most, no
redirect followed, 512 KiB at most; what went wrong comes back in words, for the Settings page's
"Test connection" and for the audit trail of a refused sign-in."""
import requests
from django.core.exceptions import ValidationError

from .configuration import check_idp_url

TIMEOUT_SECONDS = 5
MAX_DOCUMENT_BYTES = 512 * 1024


def fetch_json(url: str) -> tuple[dict | None, str | None]:
    """GET a JSON object from an IdP: (document, None) or (None, what went wrong in words)."""
    try:
        check_idp_url(url, "url")
    except ValidationError as error:
        return None, " ".join(error.messages)
    try:
        with requests.get(url, timeout=TIMEOUT_SECONDS, allow_redirects=False, stream=True,
                          headers={"Accept": "application/json"}) as response:
            if response.is_redirect:
                return None, f"it answers with a redirect to {response.headers.get('Location')}; enter the final address."
            if response.status_code != 200:
                return None, f"it answers HTTP {response.status_code}."
            body = response.raw.read(MAX_DOCUMENT_BYTES + 1, decode_content=True)
    except requests.exceptions.SSLError:
        return None, "its TLS certificate is not trusted (or does not name this host)."
    except requests.exceptions.Timeout:
        return None, f"no answer within {TIMEOUT_SECONDS} seconds."
    except requests.exceptions.RequestException:
        return None, "the connection failed (the host is down, or refuses connections)."
    if len(body) > MAX_DOCUMENT_BYTES:
        return None, "the document is larger than 512 KiB."
    try:
        document = requests.models.complexjson.loads(body)
    except ValueError:
        return None, "it is not JSON."
    if not isinstance(document, dict):
        return None, "it is not a JSON object."
    return document, None
