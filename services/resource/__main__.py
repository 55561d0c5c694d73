"""`python -m services.resource` runs the service; `... migrate` only migrates."""

import sys

from services.resource.app import MIGRATIONS, SCHEMA, create_app
from shared.service import main

main(create_app, "resource", lambda s: s.resource_port, SCHEMA, MIGRATIONS, sys.argv[1:])
