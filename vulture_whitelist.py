"""Names that vulture (dead-code check of `make lint`) sees defined but never used, because a
framework calls or reads them by name. Each is used; keep this list to such names only: code that
nothing calls is deleted, not listed here. (aiohttp handlers, cleanup contexts, and fixtures that
tests ask for by parameter are already seen as used.)"""

from vulture.whitelist_utils import Whitelist

_ = Whitelist()

# pytest reads a test module's `pytestmark` and calls conftest hooks by their names.
_.pytestmark
_.pytest_collection_modifyitems

# Autouse fixtures: pytest runs them around every test (or the session) without being asked.
_.edges_stopped  # tests/conftest.py
_._webhooks_end_with_their_test  # tests/conftest.py

# schemathesis calls `@schemathesis.hook` functions by their names (tests/fuzz/hooks.py).
_.flatmap_query
_.flatmap_body
_.flatmap_path_parameters

# aiohttp reads request.remote from it; tests/unit/test_http_helpers.py sets it on a mocked request.
_._transport_peername
