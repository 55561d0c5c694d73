"""A webhook receiver for trying Herald out: prints each delivery and checks its signature.

    python deploy/dev/webhook_receiver.py [--port 9000] [--secret whsec_...]

With --secret it verifies every request with shared.webhooks.verify (Standard Webhooks, 5
minutes of tolerance) and answers 401 to one that does not verify; otherwise it answers 204.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from shared.webhooks import WebhookVerificationError, verify


def receiver(secret: str | None) -> web.Application:
    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        names = ("webhook-id", "webhook-timestamp", "webhook-signature", "user-agent")
        print(" ".join(f"{name}={request.headers.get(name, '-')}" for name in names), flush=True)
        print(body.decode(errors="replace"), flush=True)
        if secret is not None:
            try:
                verify(secret, request.headers, body)
            except WebhookVerificationError as exc:
                print(f"signature: NOT verified ({exc})", flush=True)
                return web.Response(status=401)
            print("signature: verified", flush=True)
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/{tail:.*}", handle)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--secret", help="the subscription's whsec_ secret, to verify signatures")
    args = parser.parse_args()
    web.run_app(receiver(args.secret), host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
