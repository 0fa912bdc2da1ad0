"""Sign-in throttling: after a few failed attempts for one username from one address, refuse for a while.

Counted in Django's cache, per username (case-insensitive) and client address, so one person
mistyping cannot lock another out, and guessing one login's password from one address stops
after FAILURE_LIMIT tries. With several server processes the cache must be shared (Redis,
Memcached, or the database cache) for the limit to hold across them.
"""
import hashlib

from django.core.cache import cache

FAILURE_LIMIT = 5
LOCKOUT_SECONDS = 15 * 60
KEY_PREFIX = "console:signin-failures:"


def _key(username: str, address: str) -> str:
    digest = hashlib.sha256(f"{username.strip().lower()}\n{address}".encode()).hexdigest()
    return KEY_PREFIX + digest


def client_address(request) -> str:
    # REMOTE_ADDR only: a forwarded-for header is the client's to forge unless a trusted proxy sets it
    return request.META.get("REMOTE_ADDR", "") if request is not None else ""


def is_locked(username: str, address: str) -> bool:
    return cache.get(_key(username, address), 0) >= FAILURE_LIMIT


def record_failure(username: str, address: str) -> int:
    key = _key(username, address)
    cache.add(key, 0, LOCKOUT_SECONDS)  # the window starts at the first failure
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, LOCKOUT_SECONDS)
        return 1


def clear(username: str, address: str) -> None:
    cache.delete(_key(username, address))
