"""`celery -A worker worker` (and beat, flower) find the Celery app here."""
import invoicer.workers  # noqa: F401  (a threads pool gets its HTTP and database pools sized)
from invoicer.tasks import app

__all__ = ["app"]
