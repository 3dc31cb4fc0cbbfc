"""`celery -A worker worker` (and beat, flower) find the Celery app here."""
from invoicer.tasks import app

__all__ = ["app"]
