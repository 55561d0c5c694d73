"""The web toolkit every service uses, one module a role: `middleware` (request ids, logs,
metrics), `json_io` (JSON bodies in and out), `paging` (limits, cursors, next links),
`conditional` (ETags, If-Match, If-None-Match), `params` (query and path parameters),
`client` (the caller's address), `health` (health, readiness and metrics routes)."""
