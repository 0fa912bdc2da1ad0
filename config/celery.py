import logging
import os

from celery import Celery
from celery import Task as CeleryTask
from kombu.exceptions import OperationalError

from .outage import Outage, without_credentials

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


class BrokerUnavailable(OperationalError):
    """A send the broker did not take, or that was not tried because the broker is known to be down."""


class Task(CeleryTask):
    """Every task's base: sends fail fast while the broker is down.

    The database holds the work every task carries (outbox rows, stored flow batches, queued
    reports, webhook deliveries) and the beat sweep re-drives it, so a request that commits work
    need not wait on a dead Redis for each task it hands on: one send per moment tries the broker
    (config/outage.py), the others raise BrokerUnavailable at once. Callers that send after commit
    (`config.tasks.enqueue_on_commit`) carry on as before, and the outage is logged once.
    """

    def apply_async(self, *args, **kwargs):
        if self.app.conf.task_always_eager:
            return super().apply_async(*args, **kwargs)
        broker = Outage.of(f"The broker ({without_credentials(self.app.conf.broker_url)})",
                           meanwhile="new work waits in the database for the sweep")
        if not broker.try_now():
            raise BrokerUnavailable(f"{broker.name} is down; the sweep re-drives this work")
        try:
            result = super().apply_async(*args, **kwargs)
        except OperationalError as error:
            broker.failed(error)
            raise BrokerUnavailable(f"{broker.name} does not answer; the sweep re-drives this work") from error
        broker.answered()
        return result


class SkipKnownBrokerOutage(logging.Filter):
    """Drops the log line of a send refused by BrokerUnavailable: the outage was logged when it began,
    and Django would otherwise log a traceback for each request that commits work while it lasts."""

    def filter(self, record):
        return not (record.exc_info and isinstance(record.exc_info[1], BrokerUnavailable))


app = Celery("console", task_cls=Task)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
