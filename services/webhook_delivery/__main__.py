"""`python -m services.webhook_delivery` runs the service; `... migrate` only migrates."""

import sys

from services.webhook_delivery.app import MIGRATIONS, SCHEMA, create_app
from shared.service import main

main(create_app, "webhook_delivery", lambda s: s.webhook_port, SCHEMA, MIGRATIONS, sys.argv[1:])
