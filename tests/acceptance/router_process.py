"""`contact-router serve` as a real child process, followed through its JSON log."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

START_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0


class RouterProcess:
    """One server process. Its log lines are read as they come, so a test can wait
    for an event (`router_listening`, `router_active`...) instead of sleeping."""

    def __init__(self, process: asyncio.subprocess.Process, *, own_group: bool = False) -> None:
        self.process = process
        self.own_group = own_group
        self.lines: list[str] = []
        self.events: list[dict[str, Any]] = []
        self._changed = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(
        cls,
        env: dict[str, str],
        *,
        args: Sequence[str] = (),
        until: str = "router_active",
        own_group: bool = False,
    ) -> RouterProcess:
        """`serve ARGS` with `env` over the defaults; return once `until` is logged.
        With `own_group`, in a process group of its own, as a terminal runs a command:
        `interrupt()` then reaches it and its children, as Ctrl-C does, and `kill()`
        kills them all (the staffing worker processes too)."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "router.cli",
            "serve",
            *args,
            env={
                **os.environ,
                "ROUTER_PORT": "0",
                "ROUTER_METRICS_PORT": "off",
                "ROUTER_LOG_FORMAT": "json",
                **env,
            },
            stderr=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
            start_new_session=own_group,
        )
        started = cls(process, own_group=own_group)
        try:
            await started.wait_for(until, START_TIMEOUT)
        except BaseException:
            await started.kill()
            raise
        return started

    @property
    def port(self) -> int:
        return int(self.event("router_listening")["port"])

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def event(self, name: str) -> dict[str, Any]:
        for event in self.events:
            if event.get("event") == name:
                return event
        raise LookupError(f"no {name} in the log:\n{self.output}")

    async def wait_for(self, name: str, within: float = START_TIMEOUT) -> dict[str, Any]:
        """The first log event called `name`, waiting for it at most `within` seconds."""

        async def logged() -> dict[str, Any]:
            while True:
                with contextlib.suppress(LookupError):
                    return self.event(name)
                if self._reader.done():
                    raise AssertionError(f"the server exited before {name}:\n{self.output}")
                self._changed.clear()
                await self._changed.wait()

        return await asyncio.wait_for(logged(), within)

    async def health(self, service: str = "") -> int:
        async with grpc.aio.insecure_channel(self.address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            request = health_pb2.HealthCheckRequest(service=service)
            return int((await stub.Check(request, timeout=5)).status)

    async def stop(self, sig: int = signal.SIGTERM) -> int:
        """Signal the process and wait for it to exit; its exit status."""
        if self.process.returncode is None:
            self.process.send_signal(sig)
        return await self.wait()

    async def interrupt(self) -> int:
        """Ctrl-C: SIGINT to the whole process group (started with `own_group`), once;
        the exit status."""
        os.killpg(self.process.pid, signal.SIGINT)
        return await self.wait()

    async def wait(self) -> int:
        """Wait for the process to exit (the log read to its end); its exit status."""
        await asyncio.wait_for(self.process.wait(), STOP_TIMEOUT)
        await asyncio.wait_for(self._reader, STOP_TIMEOUT)
        assert self.process.returncode is not None
        return self.process.returncode

    async def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a crash. Started with `own_group`, the
        whole group is killed, even once the router itself has exited: no child it
        started outlives the test."""
        if self.own_group:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        await self.stop(signal.SIGKILL)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    async def _read(self) -> None:
        assert self.process.stderr is not None
        while line := (await self.process.stderr.readline()).decode():
            self.lines.append(line)
            if line.startswith("{"):
                with contextlib.suppress(json.JSONDecodeError):
                    self.events.append(json.loads(line))
            self._changed.set()
        self._changed.set()
