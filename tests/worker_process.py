"""A webhook delivery process of its own (`python -m services.webhook_delivery`), for the tests
and the fault suite that kill and restart it."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import aiohttp

ROOT = Path(__file__).resolve().parents[1]


class WorkerProcess:
    def __init__(self, env: dict[str, str], log: IO[bytes]) -> None:
        """`env` is the whole environment; HERALD_WEBHOOK_PORT says where it answers."""
        self.env = env
        self.url = f"http://127.0.0.1:{env['HERALD_WEBHOOK_PORT']}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "services.webhook_delivery"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    async def ready(self, seconds: float = 40) -> None:
        deadline = time.monotonic() + seconds
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"the worker process exited with {self.process.returncode}")
                try:
                    timeout = aiohttp.ClientTimeout(total=2)
                    async with session.get(self.url + "/readyz", timeout=timeout) as resp:
                        if resp.status == 200:
                            return
                except (aiohttp.ClientError, TimeoutError):
                    pass
                await asyncio.sleep(0.2)
        raise RuntimeError(f"the worker process was not ready within {seconds:g} s")

    async def metrics(self) -> str:
        async with aiohttp.ClientSession() as session, session.get(self.url + "/metrics") as resp:
            return await resp.text()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self, seconds: float = 20) -> int:
        """SIGTERM, then SIGKILL if it has not exited within `seconds`."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout=seconds)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.returncode
