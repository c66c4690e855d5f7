"""Each probe of deploy/kubernetes/deployment.yaml, asked of a real active router and a
real standby as the kubelet asks it (grpc.health.v1 Check, the service the probe names).

Issue 14, item 2: the startup probe asked for service "", which a standby reports
NOT_SERVING for as long as it is a standby, so the kubelet killed the standby every
two minutes. A probe a standby cannot pass fails here, not in a cluster.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

from router.domain import RoutingPolicy
from router.server import RunningRouter, start_router

DEPLOY = Path(__file__).parents[2] / "deploy"
DEPLOYMENT = DEPLOY / "kubernetes" / "deployment.yaml"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@dataclass(frozen=True)
class GrpcProbe:
    kind: str
    port: int
    service: str


def router_container() -> dict[str, Any]:
    documents = [d for d in yaml.safe_load_all(DEPLOYMENT.read_text()) if d]
    (deployment,) = [d for d in documents if d["kind"] == "Deployment"]
    (container,) = [
        c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "router"
    ]
    return dict(container)


def manifest_probes() -> list[GrpcProbe]:
    """The router container's probes: each must be a gRPC probe."""
    container = router_container()
    probes = []
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert kind in container, f"the router container has no {kind}"
        grpc_probe = container[kind].get("grpc")
        assert grpc_probe is not None, f"{kind} is not a gRPC health probe"
        # The kubelet sends service "" when the manifest names none.
        probes.append(GrpcProbe(kind, int(grpc_probe["port"]), grpc_probe.get("service", "")))
    return probes


async def probe_status(probe: GrpcProbe, router: RunningRouter) -> int:
    """The status `router` answers the probe's Check with. The kubelet passes SERVING
    only; an RPC error raises here, since a router that does not answer is no standby
    answering NOT_SERVING."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{router.port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=probe.service), timeout=5)
    return int(reply.status)


@pytest.fixture
async def active_and_standby(
    database_url: str,
) -> AsyncIterator[tuple[RunningRouter, RunningRouter]]:
    """Two routers on one database, as the Deployment's two replicas: the first holds
    the active lock, the second waits for it. Each is stopped whatever happens, the
    first even when the second fails to start."""
    active = await start_router(database_url, RoutingPolicy(), "127.0.0.1", 0)
    try:
        standby = await start_router(
            database_url, RoutingPolicy(), "127.0.0.1", 0, wait_active=False
        )
        try:
            assert standby.active.switchboard is None, "the second router must be a standby"
            yield active, standby
        finally:
            await standby.stop(grace=0)
    finally:
        await active.stop(grace=0)


class TestProbes:
    def test_probes_ask_the_grpc_port(self) -> None:
        """Every probe asks the container's gRPC port."""
        ports = {p["name"]: p["containerPort"] for p in router_container()["ports"]}
        assert {probe.port for probe in manifest_probes()} == {ports["grpc"]}

    async def test_a_standby_passes_startup_and_liveness(
        self, active_and_standby: tuple[RunningRouter, RunningRouter]
    ) -> None:
        """Startup and liveness pass on the active router and on the standby, or the
        kubelet kills the standby over and over."""
        active, standby = active_and_standby
        for probe in manifest_probes():
            if probe.kind == "readinessProbe":
                continue
            assert await probe_status(probe, active) == SERVING, f"{probe}: the active router"
            assert await probe_status(probe, standby) == SERVING, f"{probe}: the standby"

    async def test_readiness_picks_the_active_router_only(
        self, active_and_standby: tuple[RunningRouter, RunningRouter]
    ) -> None:
        """Readiness passes on the active router and fails on the standby, so the
        Service sends every client to the active one."""
        active, standby = active_and_standby
        (readiness,) = [p for p in manifest_probes() if p.kind == "readinessProbe"]
        assert await probe_status(readiness, active) == SERVING
        assert await probe_status(readiness, standby) == NOT_SERVING


def image_healthcheck() -> list[str]:
    """The Dockerfile's HEALTHCHECK command, as its exec form lists it."""
    lines = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ").splitlines()
    (line,) = [line for line in lines if line.startswith("HEALTHCHECK ")]
    command: list[str] = json.loads(line.partition(" CMD ")[2])
    return command


class TestImageHealthcheck:
    async def test_a_standby_container_is_healthy(
        self, active_and_standby: tuple[RunningRouter, RunningRouter]
    ) -> None:
        """The image's HEALTHCHECK, run as Docker runs it, passes on the standby too: an
        orchestrator that replaces unhealthy containers must not replace a standby."""
        _, standby = active_and_standby
        program, script, *args = image_healthcheck()
        assert program == "python"
        assert script == "/opt/contact-router/healthcheck.py"
        check = await asyncio.create_subprocess_exec(
            sys.executable,
            str(DEPLOY / "healthcheck.py"),
            *args,
            env={**os.environ, "ROUTER_PORT": str(standby.port)},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(check.communicate(), 10)
        assert check.returncode == 0, (out + err).decode()
