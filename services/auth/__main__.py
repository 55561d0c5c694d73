"""`python -m services.auth` runs the service; `python -m services.auth migrate` only migrates;
`python -m services.auth reset-password EMAIL` sets a user's password (read from stdin)."""

import sys

from services.auth.app import MIGRATIONS, SCHEMA, create_app
from shared.service import main

if sys.argv[1:2] == ["reset-password"]:
    from services.auth.reset_password import run

    sys.exit(run(sys.argv[2:]))
main(create_app, "auth", lambda s: s.auth_port, SCHEMA, MIGRATIONS, sys.argv[1:])
