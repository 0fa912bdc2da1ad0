"""The cache on Redis, kept in this process's memory while Redis does not answer.

The cache holds counters: the API's per-token rates (accounts/throttling.py) and the console's
sign-in lockout (identity/throttle.py). Shared through Redis, they hold across every process; with
Redis down they are counted per process rather than failing the request with a 500, and the
first answer from Redis resumes shared counting by itself (config/outage.py says when to try it
again and logs the outage once). The settings give Redis short socket timeouts, so a hung Redis
costs the one request that tries it a fraction of a second, and the others nothing.
"""
from functools import wraps

from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import RedisError

from .outage import Outage, without_credentials

# Per-process counters while Redis is down: enough for every token and sign-in being counted at
# once, so culling does not quietly forget a lockout.
FALLBACK_MAX_ENTRIES = 50_000


class FallbackRedisCache(RedisCache):
    """Django's RedisCache, with every operation done in a per-process LocMemCache while Redis fails."""

    def __init__(self, server, params):
        super().__init__(server, params)
        location = ",".join(without_credentials(s) for s in self._servers)
        self._outage = Outage.of(f"The cache's Redis ({location})",
                                 meanwhile="throttles and sign-in lockouts count in each process")
        same_keys = {k: params[k] for k in ("TIMEOUT", "KEY_PREFIX", "VERSION", "KEY_FUNCTION") if k in params}
        self._local = LocMemCache(f"redis-fallback:{location}",
                                  {**same_keys, "OPTIONS": {"MAX_ENTRIES": FALLBACK_MAX_ENTRIES}})


def _falls_back(name: str):
    on_redis = getattr(RedisCache, name)

    @wraps(on_redis)
    def operation(self, *args, **kwargs):
        if self._outage.try_now():
            try:
                result = on_redis(self, *args, **kwargs)
            except RedisError as error:  # refused, timed out, loading, out of memory, read-only replica…
                self._outage.failed(error)
            else:
                self._outage.answered()
                return result
        return getattr(self._local, name)(*args, **kwargs)

    return operation


for _name in ("add", "get", "set", "touch", "delete", "get_many", "has_key", "incr", "set_many",
              "delete_many", "clear"):
    setattr(FallbackRedisCache, _name, _falls_back(_name))
