"""Swagger UI at GET /docs, its assets served from the installed `swagger_ui_bundle` package
(distribution `swagger-ui-bundle-v2`: Swagger UI 5, the first to read OpenAPI 3.1), so the page
fetches nothing from the internet."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from swagger_ui_bundle import swagger_ui_path

from shared.authn import public
from shared.problems import NotFound

DOCS_PATH = "/docs"
ASSETS = Path(str(swagger_ui_path))
# Only these files are served: nothing else of the package's directory is reachable.
ASSET_TYPES = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
    "favicon-16x16.png": "image/png",
}
INIT_SCRIPT = "herald-docs.js"

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Herald API</title>
  <link rel="stylesheet" href="/docs/swagger-ui.css">
  <link rel="icon" type="image/png" href="/docs/favicon-32x32.png" sizes="32x32">
  <link rel="icon" type="image/png" href="/docs/favicon-16x16.png" sizes="16x16">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script src="/docs/herald-docs.js"></script>
</body>
</html>
"""

# A file of its own rather than inline, so the page's CSP needs no 'unsafe-inline' scripts.
INIT = r"""window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/v2/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: true,
    displayRequestDuration: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    // /v2/requesttoken answers with a JSON string: a token pasted with its quotes works too.
    requestInterceptor: function (request) {
      var auth = request.headers && request.headers.Authorization;
      if (auth) {
        request.headers.Authorization = auth.replace(/^Bearer\s+"([^"]*)"\s*$/, "Bearer $1");
      }
      return request;
    },
  });
});
"""

# Swagger UI styles elements inline and draws icons from data: URLs; everything else is ours.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'"
)


@public
async def docs_page(request: web.Request) -> web.Response:
    return web.Response(
        text=PAGE,
        content_type="text/html",
        headers={"Content-Security-Policy": CSP, "Cache-Control": "no-cache"},
    )


@public
async def docs_asset(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    cache = {"Cache-Control": "public, max-age=3600"}
    if name == INIT_SCRIPT:
        return web.Response(text=INIT, content_type="text/javascript", headers=cache)
    content_type = ASSET_TYPES.get(name)
    if content_type is None:
        raise NotFound("no such file of Swagger UI")
    return web.FileResponse(ASSETS / name, headers={**cache, "Content-Type": content_type})


def add_routes(app: web.Application) -> None:
    app.router.add_get(DOCS_PATH, docs_page)
    app.router.add_get(DOCS_PATH + "/{name}", docs_asset)
