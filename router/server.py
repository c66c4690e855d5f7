"""Wiring: PostgreSQL, the core, the switchboard and the gRPC server, and their order
of start and stop."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from dataclasses import dataclass
from datetime import datetime

import grpc
import structlog
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection

from router._proto.contactrouter.v1 import contact_router_pb2 as pb
from router._proto.contactrouter.v1 import contact_router_pb2_grpc as pb_grpc
from router.api.agent_service import AgentService
from router.api.contact_service import ContactService
from router.api.reporting_service import ReportingService
from router.config import Settings
from router.domain import QueueSnapshot, Router, RoutingPolicy
from router.domain.rolling import RollingServiceLevel
from router.metrics import LiveCollector, RouterMetrics, serve_metrics
from router.store import Store
from router.store.embedded import EmbeddedPostgres
from router.switchboard import Switchboard

log = structlog.get_logger(__name__)

SERVICE_NAMES = tuple(
    pb.DESCRIPTOR.services_by_name[name].full_name
    for name in ("ContactService", "AgentService", "ReportingService")
)

# Dead agent desktops are noticed within about 15 s (their offers go back to the
# queue); messages are capped so a hostile client cannot make the server buffer much.
_SERVER_OPTIONS = [
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
    ("grpc.max_receive_message_length", 256 * 1024),
]


@dataclass
class RunningRouter:
    """A started router: the port it listens on and what to stop."""

    server: grpc.aio.Server
    switchboard: Switchboard
    store: Store
    health: health_aio.HealthServicer
    port: int
    metrics: RouterMetrics
    metrics_server: asyncio.Server | None = None
    metrics_port: int | None = None

    async def stop(self, grace: float = 5.0) -> None:
        """Refuse new calls, return outstanding offers, flush every write, stop."""
        await self.health.enter_graceful_shutdown()
        await self.switchboard.stop()
        await self.server.stop(grace)
        if self.metrics_server is not None:
            self.metrics_server.close()
            await self.metrics_server.wait_closed()
        await self.store.close()
        log.info("router_stopped")


async def start_router(
    database_url: str,
    policy: RoutingPolicy,
    host: str = "127.0.0.1",
    port: int = 0,
    metrics_port: int | None = None,
) -> RunningRouter:
    """Migrate, rebuild the queue, and serve. port=0 picks a free port; metrics are
    served on `metrics_port` (0 picks one) unless it is None."""
    store = await Store.open(database_url)
    router = Router(policy)
    metrics = RouterMetrics(RollingServiceLevel(policy))
    try:
        applied = await store.migrate()
        switchboard = Switchboard(router, store)
        store.writer.on_batch = metrics.observe_batch
        switchboard.observers.append(lambda events: metrics.observe_events(events, time.time()))
        await switchboard.start()
    except BaseException:
        await store.close()
        raise

    def read_live() -> tuple[QueueSnapshot, RollingServiceLevel, datetime, int]:
        snapshot, now = switchboard.snapshot()
        return snapshot, metrics.rolling, now, store.writer.backlog

    metrics.registry.register(LiveCollector(read_live))
    metrics_server = None
    if metrics_port is not None:
        metrics_server = await serve_metrics(metrics, host, metrics_port)
    server = grpc.aio.server(options=_SERVER_OPTIONS)
    observe = metrics.observe_rpc
    pb_grpc.add_ContactServiceServicer_to_server(ContactService(switchboard, observe), server)
    pb_grpc.add_AgentServiceServicer_to_server(AgentService(switchboard, observe), server)
    pb_grpc.add_ReportingServiceServicer_to_server(ReportingService(switchboard, observe), server)
    health = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    reflection.enable_server_reflection(
        (
            *SERVICE_NAMES,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ),
        server,
    )
    bound = server.add_insecure_port(f"{host}:{port}")
    await server.start()
    for name in ("", *SERVICE_NAMES):
        await health.set(name, health_pb2.HealthCheckResponse.SERVING)
    metrics_bound = None if metrics_server is None else metrics_server.sockets[0].getsockname()[1]
    log.info(
        "router_started",
        host=host,
        port=bound,
        metrics_port=metrics_bound,
        migrations_applied=applied,
    )
    return RunningRouter(
        server, switchboard, store, health, bound, metrics, metrics_server, metrics_bound
    )


async def serve(settings: Settings) -> None:
    """Run until SIGTERM or SIGINT, then shut down cleanly."""
    embedded: EmbeddedPostgres | None = None
    url = settings.database_url
    if url is None:
        embedded = EmbeddedPostgres(settings.data_dir / "postgres")
        url = await asyncio.to_thread(embedded.start)
    try:
        running = await start_router(
            url, settings.policy, settings.host, settings.port, settings.metrics_port
        )
        if settings.host in ("127.0.0.1", "localhost", "::1"):
            log.info("listening_on_loopback_only", hint="set ROUTER_HOST=0.0.0.0 to serve others")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        log.info("router_stopping")
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await running.stop(settings.shutdown_grace)
    finally:
        if embedded is not None:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(embedded.stop)
