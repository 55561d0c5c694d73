"""`python -m services.gateway` runs the gateway."""

import sys

from services.gateway.app import create_app
from shared.service import main

main(create_app, "gateway", lambda s: s.gateway_port, None, None, sys.argv[1:])
