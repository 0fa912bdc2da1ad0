"""What every app's tasks share: the retry policy, and handing a task to the broker after commit."""
from functools import cache

from django.db import InterfaceError, OperationalError, transaction
from django.utils.module_loading import import_string

# Database trouble is retried with a capped backoff; a worker that dies mid-task hands the task back.
RETRY = {"acks_late": True, "reject_on_worker_lost": True, "autoretry_for": (OperationalError, InterfaceError),
         "retry_backoff": True, "retry_backoff_max": 60, "max_retries": None}


@cache
def _task(path: str):
    return import_string(path)


def enqueue_on_commit(task_path: str, *args, once: bool = False) -> None:
    """Send the task named by its dotted path, with these ids, once the current transaction commits.

    Robust: with the broker down the committed work waits in the database and the beat sweep re-drives
    it, so a failed send is logged and the request goes on. `once` sends it at most once per transaction.
    The task is named, not imported, because tasks import the services that call this.
    """
    key = (task_path, args)
    if once and any(getattr(callback, "enqueues", None) == key
                    for _, callback, _ in transaction.get_connection().run_on_commit):
        return

    def enqueue():
        _task(task_path).delay(*args)

    enqueue.enqueues = key
    transaction.on_commit(enqueue, robust=True)
