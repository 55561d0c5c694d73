"""`python -m services.auth reset-password EMAIL`: set a user's password from the operator's
shell, for a lost admin password (HERALD_ADMIN_PASSWORD only creates the first admin).

The new password is read from stdin (its first line), or asked twice with getpass when stdin is
a terminal; never from the command line, where `ps` and shell histories would show it. The
change takes the API's path: the credential version goes up (every older token is refused) and
`user.credentials_changed` goes into the outbox in the same transaction (a running auth
publishes it at once, a stopped one when it starts). The email's login lock-outs are lifted.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import sys
from typing import Any, TextIO

import asyncpg

from services.auth import schemas
from services.auth.accounts import SCHEMA, save_changes
from services.auth.passwords import Passwords
from services.auth.repo import ThrottleRepo, UserRepo
from shared.config import Settings, SettingsError
from shared.db import Database
from shared.logging import setup_logging
from shared.problems import ValidationFailed
from shared.validation import validate

log = logging.getLogger("herald.auth.operator")

# Exit codes, also in docs/operations.md (operator commands); 2 is argparse's own, for a malformed
# command line.
DONE = 0
FAILED = 1  # settings, or PostgreSQL unreachable or not migrated
NO_SUCH_USER = 3
PASSWORD_REFUSED = 4


class Refused(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def read_password(stdin: TextIO) -> str:
    if stdin.isatty():
        first = getpass.getpass("New password: ")
        if getpass.getpass("Repeat it: ") != first:
            raise Refused(PASSWORD_REFUSED, "the two passwords differ; nothing changed")
        return first
    return stdin.readline().removesuffix("\n").removesuffix("\r")


def check_password(password: str) -> None:
    """The API's rule for a password (schemas.PASSWORD), with its message."""
    try:
        validate(schemas.PASSWORD, password)
    except ValidationFailed as exc:
        rule = f"{schemas.PASSWORD['minLength']} to {schemas.PASSWORD['maxLength']} characters"
        raise Refused(PASSWORD_REFUSED, f"the password is refused ({rule}): {exc.detail}") from None


async def reset_password(settings: Settings, email: str, password: str) -> dict[str, Any]:
    """Set the password; the user as it is now."""
    password_hash = await Passwords(settings).hash(password)
    db = await Database.connect(settings.database_url, SCHEMA, size=1)
    try:
        async with db.transaction() as conn:
            repo = UserRepo(conn)
            before = await repo.by_email(email, for_update=True)
            if before is None:
                raise Refused(NO_SUCH_USER, f"no user has the email {email!r}; nothing changed")
            after = await save_changes(conn, before, {"password_hash": password_hash}, None)
            await ThrottleRepo(conn).forget_email(before["email"])
    finally:
        await db.close()
    log.info(
        "password reset by an operator command",
        extra={"user_id": str(after["id"]), "email": after["email"], "cv": after["credential_version"]},
    )
    return after


def run(argv: list[str], stdin: TextIO = sys.stdin, out: TextIO = sys.stderr) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m services.auth reset-password",
        description="Set a user's password (read from stdin, or asked when stdin is a terminal);"
        " every token the user holds stops working.",
    )
    parser.add_argument("email", help="the user's email (any case)")
    email = parser.parse_args(argv).email.strip()
    try:
        settings = Settings.from_env()
        setup_logging("auth", settings.log_level)
        password = read_password(stdin)
        check_password(password)
        user = asyncio.run(reset_password(settings, email, password))
    except Refused as exc:
        print(f"reset-password: {exc}", file=out)
        return exc.code
    except SettingsError as exc:
        print(f"reset-password: {exc}", file=out)
        return FAILED
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"reset-password: PostgreSQL: {type(exc).__name__}: {exc}; nothing changed", file=out)
        return FAILED
    print(
        f"reset-password: the password of {user['email']} is set; the tokens made before it are"
        f" refused (credential version {user['credential_version']})",
        file=out,
    )
    return DONE
