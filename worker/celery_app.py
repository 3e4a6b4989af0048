"""The worker's Celery app; `seedgrid worker` sets its Redis URL before starting it."""

from seedgrid.shared.celery_config import make_celery
from seedgrid.shared.settings import get_settings

app = make_celery(get_settings().redis_url)
app.conf.include = ["seedgrid.worker.tasks"]
