"""Reading a JSON document from an organization's IdP (discovery, keys): the URL behind the SSRF
guard (public, or named in SSO_ALLOWED_HOSTS; HTTPS in production) and the connection made to the
address checked, not to a second DNS answer; 5 seconds at most for the whole answer, however
slowly it drips; no redirect followed; 512 KiB at most; what went wrong comes back in words, for the Settings page's
"Test connection" and for the audit trail of a refused sign-in."""
import http.client
import json
import socket
import ssl

from django.core.exceptions import ValidationError

from config import outbound

from .configuration import idp_target

TIMEOUT_SECONDS = 5
MAX_DOCUMENT_BYTES = 512 * 1024


def fetch_json(url: str) -> tuple[dict | None, str | None]:
    """GET a JSON object from an IdP: (document, None) or (None, what went wrong in words)."""
    try:
        target = idp_target(url, "url")
    except ValidationError as error:
        return None, " ".join(error.messages)
    try:  # to the address just checked, never to a second DNS answer (DNS rebinding)
        status, headers, body = outbound.get(target, {"Accept": "application/json", "Accept-Encoding": "identity"},
                                             timeout=TIMEOUT_SECONDS, max_bytes=MAX_DOCUMENT_BYTES)
    except ssl.SSLError:
        return None, "its TLS certificate is not trusted (or does not name this host)."
    except (socket.timeout, outbound.TooSlow):
        return None, f"no complete answer within {TIMEOUT_SECONDS} seconds."
    except (OSError, http.client.HTTPException):
        return None, "the connection failed (the host is down, or refuses connections)."
    if 300 <= status < 400:
        return None, f"it answers with a redirect to {headers.get('location')}; enter the final address."
    if status != 200:
        return None, f"it answers HTTP {status}."
    if len(body) > MAX_DOCUMENT_BYTES:
        return None, "the document is larger than 512 KiB."
    try:
        document = json.loads(body)
    except ValueError:
        return None, "it is not JSON."
    if not isinstance(document, dict):
        return None, "it is not a JSON object."
    return document, None
