"""What this process knows about a dependency that stopped answering (the cache's Redis, the broker).

Redis is an accelerator, not a dependency of the request path (DESIGN §6). When it fails, the
caller does without it (counts in memory, leaves the work in the database for the sweep) and tells
the outage here. While it is down, one call every RETRY_AFTER_SECONDS tries it again (a half-open
circuit breaker), so a dead or hung Redis costs that one call a socket timeout at most and every
other request nothing; the first answer ends the outage. Each outage is logged twice per process,
when it starts and when it ends, not once per request.
"""
import logging
import threading
import time
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 2.0


def without_credentials(url: str) -> str:
    """A Redis URL fit for a log line: scheme, host, port and path, no user or password."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}{parts.path}"


class Outage:
    """One dependency's state in this process, shared by every thread (see `Outage.of`)."""

    _known: dict[str, "Outage"] = {}
    _known_lock = threading.Lock()

    def __init__(self, name: str, *, meanwhile: str):
        self.name, self.meanwhile = name, meanwhile
        self.since: float | None = None  # monotonic instant of the first failure, None while it answers
        self._retry_at = 0.0
        self._lock = threading.Lock()

    @classmethod
    def of(cls, name: str, *, meanwhile: str) -> "Outage":
        """The process's one record for `name`: Django builds a cache backend per thread, this is per process."""
        known = cls._known.get(name)
        if known is None:
            with cls._known_lock:
                known = cls._known.setdefault(name, cls(name, meanwhile=meanwhile))
        return known

    def try_now(self) -> bool:
        """Whether this call should use the dependency. While it answers, always; while it is down,
        one call per RETRY_AFTER_SECONDS in the process tries it, and every other call does without."""
        if self.since is None:  # the usual case: no lock taken
            return True
        now = time.monotonic()
        with self._lock:
            if self.since is not None and now < self._retry_at:
                return False
            self._retry_at = now + RETRY_AFTER_SECONDS  # the others keep doing without while this one tries
            return True

    def failed(self, error: Exception) -> None:
        now = time.monotonic()
        with self._lock:
            self._retry_at = now + RETRY_AFTER_SECONDS
            if self.since is not None:
                return
            self.since = now
        log.warning("%s does not answer (%s: %s); %s until it does.", self.name, type(error).__name__, error,
                    self.meanwhile)

    def answered(self) -> None:
        if self.since is None:  # the usual case: no lock taken
            return
        with self._lock:
            since, self.since = self.since, None
        if since is not None:
            log.warning("%s answers again after %.1f s.", self.name, time.monotonic() - since)
