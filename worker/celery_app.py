"""The worker's Celery app; `seedgrid worker` sets its Redis URL before starting it."""

import os

from seedgrid.shared.celery_config import make_celery

app = make_celery(os.environ.get("SEEDGRID_REDIS_URL"))
app.conf.include = ["seedgrid.worker.tasks"]
