"""`python -m services.auth` runs the service; `python -m services.auth migrate` only migrates."""

import sys

from services.auth.app import MIGRATIONS, SCHEMA, create_app
from shared.service import main

main(create_app, "auth", lambda s: s.auth_port, SCHEMA, MIGRATIONS, sys.argv[1:])
