"""`python -m services.docs` runs the docs service."""

import sys

from services.docs.app import create_app
from shared.service import main

main(create_app, "docs", lambda s: s.docs_port, None, None, sys.argv[1:])
