"""Thin Celery wrappers: ids in, a service call. Each is safe to run twice."""
from datetime import timedelta
from smtplib import SMTPException

from celery import shared_task

from config.tasks import RETRY as RETRY_FOREVER

from . import selectors, services

RETRY = {**RETRY_FOREVER, "max_retries": 10}  # a report is worth ten tries; the sweep re-drives it after
# A report whose row has not moved for this long lost its task (progress moves it every few seconds).
STALE_AFTER = timedelta(minutes=10)
MAX_DELIVERIES = 5


@shared_task(**RETRY)
def generate_report(report_id: int) -> str | None:
    """Generate a report's files, with its progress on the row; a second run finds it done."""
    report = services.generate_report(report_id)
    return report.status if report else None


@shared_task(acks_late=True, reject_on_worker_lost=True, autoretry_for=(OSError, SMTPException),
             retry_backoff=60, retry_backoff_max=3600, max_retries=MAX_DELIVERIES)
def deliver_report(report_id: int) -> bool:
    """E-mail a scheduled report; a delivered report is never sent again."""
    return services.deliver_report(report_id)


@shared_task(**RETRY)
def run_schedule(schedule_id: int) -> int | None:
    """Fired by celery beat: the schedule's report of the last full period, once per period."""
    report = services.run_schedule(schedule_id)
    return report.pk if report else None


@shared_task(acks_late=True, expires=60)
def sweep_reports() -> dict:
    """Re-drive reports whose task was lost (a dead worker, the broker down), and undelivered ones."""
    regenerated, given_up = [], []
    for report_id, attempts in selectors.reports_needing_work(STALE_AFTER):
        if attempts >= services.MAX_ATTEMPTS:
            services.give_up(report_id)
            given_up.append(report_id)
        else:
            generate_report.delay(report_id)
            regenerated.append(report_id)
    redelivered = selectors.reports_needing_delivery(STALE_AFTER, MAX_DELIVERIES)
    for report_id in redelivered:
        deliver_report.delay(report_id)
    return {"regenerated": regenerated, "given_up": given_up, "redelivered": redelivered}
