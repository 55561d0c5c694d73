"""The first admin: created from settings, or with a generated password printed once, when
the user table is empty. Later starts ignore HERALD_ADMIN_PASSWORD, and say so."""

from __future__ import annotations

import logging
import secrets
import sys

from services.auth.accounts import emit
from services.auth.passwords import Passwords
from services.auth.repo import UserRepo
from shared.config import Settings
from shared.db import Database

log = logging.getLogger("herald.auth.bootstrap")
_BOOTSTRAP_LOCK = 0x626F_6F74


async def ensure_first_admin(db: Database, passwords: Passwords, settings: Settings) -> bool:
    async with db.transaction() as conn:
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _BOOTSTRAP_LOCK)
        repo = UserRepo(conn)
        if await repo.any_user():
            if settings.admin_password:
                # Said at every start: an operator who set it to regain access learns why not.
                log.info(
                    "HERALD_ADMIN_PASSWORD is ignored: users exist, and it only sets the first"
                    " admin's password; to set a password now, run"
                    " `python -m services.auth reset-password EMAIL`"
                )
            return False
        password = settings.admin_password or secrets.token_urlsafe(18)
        user = await repo.create(
            email=settings.admin_email,
            name="Administrator",
            password_hash=await passwords.hash(password),
            roles=["admin"],
        )
        await emit(conn, None, user, None)
    log.info("created the first admin", extra={"email": settings.admin_email})
    if not settings.admin_password:
        # Printed once, to the terminal only; never logged and never stored in clear.
        print(
            f"\nHerald: first admin {settings.admin_email} created; password: {password}\n"
            "Keep it now: it is not shown again.\n",
            file=sys.stderr,
            flush=True,
        )
    return True
