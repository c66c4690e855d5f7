"""Wiring: PostgreSQL, the core, the switchboard and the gRPC server, and their order
of start and stop."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING

import grpc
import structlog
from contactrouter.v1 import contact_router_pb2 as pb
from contactrouter.v1 import contact_router_pb2_grpc as pb_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc

from router.api.access import AccessInterceptor, OwnerOf, Tokens
from router.api.admin_service import AdminService
from router.api.agent_service import AgentService
from router.api.contact_service import ContactService
from router.api.event_service import EventService
from router.api.malformed import add_refusing_malformed
from router.api.registration import Registration
from router.api.reporting_service import ReportingService
from router.api.servicer import ActiveSwitchboard
from router.api.supervisor_service import SupervisorService
from router.api.watch import QueueFeed, queue_feed
from router.config import ServerTls, Settings
from router.domain import NotFound, QueueSnapshot, Router, RoutingPolicy
from router.domain.rolling import RollingServiceLevel
from router.errors import ShuttingDown, StartupError, StoreUnavailable
from router.event_stream import EventHub
from router.hours_file import HoursFile
from router.live_feed import FeedSettings
from router.metrics import LiveCollector, RouterMetrics, WatchCollector, serve_metrics
from router.reporting.reporting import Reporting
from router.retention import RetentionJob, RetentionSettings
from router.service_level_watch import ServiceLevelWatch
from router.standby import stand_by
from router.store import Store
from router.store.embedded import EmbeddedPostgres
from router.switchboard import Switchboard

if TYPE_CHECKING:
    from router.tracing import Tracing

log = structlog.get_logger(__name__)

SERVICE_NAMES = tuple(
    pb.DESCRIPTOR.services_by_name[name].full_name
    for name in (
        "ContactService",
        "AgentService",
        "ReportingService",
        "EventService",
        "SupervisorService",
        "AdminService",
    )
)

PENDING_CALLS = 50_000
"""Calls a burst may leave waiting in gRPC core for the router to take them."""

# Dead agent desktops are noticed within about 15 s (their offers go back to the
# queue); messages are capped so a hostile client cannot make the server buffer much.
_SERVER_OPTIONS = [
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
    ("grpc.max_receive_message_length", 256 * 1024),
    # gRPC sets SO_REUSEPORT by default: a second router on a busy port would then
    # listen beside the first, and the kernel would split new connections between
    # them (and their databases). Bind exclusively, so the second one is refused.
    ("grpc.so_reuseport", 0),
    # Calls that arrive faster than the Python server takes them wait in gRPC core;
    # past max_pending_requests (1,000 by default) core drops a growing share of new
    # ones, unseen by the router: 131 of 2,000 offer streams opened at once (every desk
    # reconnecting after a blip) ended CANCELLED. Queue them instead; only a burst past
    # the hard limit is refused, by core, with RESOURCE_EXHAUSTED.
    ("grpc.server.max_pending_requests", PENDING_CALLS),
    ("grpc.server.max_pending_requests_hard_limit", 2 * PENDING_CALLS),
]


_LOOPBACK = ("127.0.0.1", "localhost", "::1")

LIVENESS = "liveness"
"""Health service name that is SERVING as long as the process runs, active or standby
(for liveness probes); the empty name and the router services are SERVING only on
the active router while PostgreSQL takes writes (for readiness probes)."""


@dataclass
class RunningRouter:
    """A started router: the port it listens on, whether it is active, what to stop."""

    server: grpc.aio.Server
    store: Store
    health: health_aio.HealthServicer
    port: int
    metrics: RouterMetrics
    active: ActiveSwitchboard
    activation: asyncio.Task[None]
    feed: QueueFeed
    """WatchQueue's pictures."""
    retention: RetentionJob
    """The retention job, started once active (nothing runs when it is off)."""
    hours: HoursFile
    """The hours of operation, read again on SIGHUP and when the file changes."""
    metrics_server: asyncio.Server | None = None
    metrics_port: int | None = None

    @property
    def switchboard(self) -> Switchboard:
        return self.active.get()

    async def wait_active(self) -> None:
        """Return once this router holds the active lock and has rebuilt the queue."""
        await asyncio.shield(self.activation)

    async def wait_lost(self) -> None:
        """Return if another router takes the active lock from this one."""
        await self.wait_active()
        await self.store.writer.lost.wait()

    async def stop(self, grace: float = 5.0) -> None:
        """Refuse new work, return outstanding offers, flush every write, stop."""
        await self.health.enter_graceful_shutdown()
        if not self.activation.done():
            self.activation.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self.activation
        await self.retention.close()
        await self.hours.close()
        if self.active.switchboard is not None:
            await self.active.switchboard.stop()
        await self.feed.close(
            ShuttingDown(
                "the router is stopping: watch the queue again (the standby or the "
                "restarted router serves it)"
            )
        )
        if self.active.events is not None:
            # Event streams end now (UNAVAILABLE: resume on the successor), not at grace.
            await self.active.events.close()
        await self.server.stop(grace)
        if self.active.reporting is not None:
            await self.active.reporting.close()
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
    *,
    wait_active: bool = True,
    tokens: Tokens | None = None,
    tls: ServerTls | None = None,
    tracing: Tracing | None = None,
    watch: FeedSettings | None = None,
    reporting_database_url: str | None = None,
    max_event_streams: int = 100,
    retention: RetentionSettings | None = None,
    clock: Callable[[], datetime] | None = None,
    hours: HoursFile | None = None,
) -> RunningRouter:
    """Migrate, serve, and become the active router. port=0 picks a free port; metrics
    are served on `metrics_port` (0 picks one) unless it is None.

    The gRPC server answers from the start; while another router holds the active
    lock this one is a standby (health NOT_SERVING, RPCs UNAVAILABLE). With
    wait_active=False it returns at once and activates in the background.

    Without `tokens` anyone who reaches the port could read customers' details, so
    the router then listens on loopback only, whatever `host` says. `watch`: how often
    WatchQueue sends a picture, and to how many watchers at most.

    With `tracing` (router/tracing.py) each RPC gets a span and each commit batch one;
    without it nothing of tracing is installed. With `reporting_database_url` (a read
    replica) the reporting RPCs read there; the router starts even if it is down.
    With `retention` enabled the retention job runs while this router is active, with
    `clock` (default: the system's) for what "now" is (router/retention.py).
    `hours`: the hours of operation (router/hours_file.py; default: always open), kept
    current from its file by this router, active or standby."""
    hours = hours or HoursFile(None, policy.time_zone)
    if tokens is None and host not in _LOOPBACK:
        log.warning(
            "listening_on_loopback_only",
            requested_host=host,
            reason="no ROUTER_TOKENS_FILE: without credentials only this machine may connect",
        )
        host = "127.0.0.1"
    elif tokens is not None and tls is None and host not in _LOOPBACK:
        log.warning("tokens_without_tls", hint="bearer tokens cross the network in clear text")
    store = await _open_store(database_url, reporting_database_url)
    if tracing is not None:
        store.writer_factory = tracing.group_commit
    try:
        applied = await store.migrate()
    except BaseException:
        await store.close()
        raise
    store.check_reporting()
    metrics = RouterMetrics(RollingServiceLevel(policy))
    active = ActiveSwitchboard()

    def read_live() -> tuple[QueueSnapshot, RollingServiceLevel, datetime, int, int] | None:
        switchboard = active.switchboard
        if switchboard is None:
            return None
        snapshot, now = switchboard.snapshot()
        return snapshot, metrics.rolling, now, store.writer.backlog, switchboard.open_streams

    metrics.registry.register(LiveCollector(read_live))
    metrics_server = None
    if metrics_port is not None:
        try:
            metrics_server = await serve_metrics(metrics, host, metrics_port)
        except BaseException:
            await store.close()
            raise
    # Malformed requests are refused by the handlers themselves (add_refusing_malformed),
    # so a router without tokens or tracing runs no interceptor; access is checked
    # before them: a caller without a valid token learns nothing, not even whether its
    # bytes parse.
    interceptors: list[grpc.aio.ServerInterceptor] = []
    if tokens is not None:
        interceptors.append(AccessInterceptor(tokens, _owner_of(active)))
    if tracing is not None:
        # Outermost: refused calls (no token, bad bytes) get their span too.
        interceptors[:0] = tracing.interceptors()
    server = grpc.aio.server(options=_SERVER_OPTIONS, interceptors=interceptors)
    observe = metrics.observe_rpc
    add = partial(add_refusing_malformed, holding=active)
    add(pb_grpc.add_ContactServiceServicer_to_server, ContactService(active, observe), server)
    add(
        pb_grpc.add_AgentServiceServicer_to_server,
        AgentService(active, observe, metrics.observe_stream),
        server,
    )
    feed = queue_feed(active, watch or FeedSettings())
    metrics.registry.register(WatchCollector(lambda: (feed.watchers, feed.built)))
    reporting = ReportingService(active, observe, feed)
    add(pb_grpc.add_ReportingServiceServicer_to_server, reporting, server)
    add(pb_grpc.add_EventServiceServicer_to_server, EventService(active, observe), server)
    supervisor = SupervisorService(active, tokens, observe)
    add(pb_grpc.add_SupervisorServiceServicer_to_server, supervisor, server)
    admin = AdminService(active, store, tokens, observe)
    add(pb_grpc.add_AdminServiceServicer_to_server, admin, server)
    health = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, Registration(server))
    # The aio servicer, added as enable_server_reflection would add it for a
    # grpc.aio.Server: given the Registration (not a grpc.aio.Server), that function picks
    # the sync servicer, whose streams each hold a thread of the default executor, which
    # the event loop's DNS lookups share.
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(
        reflection.aio.ReflectionServicer(
            (
                *SERVICE_NAMES,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            )
        ),
        Registration(server),
    )
    try:
        bound = _listen(server, host, port, tls)
    except BaseException:
        await server.stop(None)
        if metrics_server is not None:
            metrics_server.close()
            await metrics_server.wait_closed()
        await store.close()
        raise
    await set_serving(health, serving=False)
    await health.set(LIVENESS, health_pb2.HealthCheckResponse.SERVING)
    await server.start()
    metrics_bound = None if metrics_server is None else metrics_server.sockets[0].getsockname()[1]
    log.info(
        "router_listening",
        host=host,
        port=bound,
        tls=tls is not None,
        tokens=tokens is not None,
        metrics_port=metrics_bound,
        migrations_applied=applied,
    )
    job = RetentionJob(store.retention, retention or RetentionSettings())
    if clock is not None:
        job = RetentionJob(store.retention, retention or RetentionSettings(), clock)
    activation = asyncio.create_task(
        _activate(store, policy, metrics, active, health, feed, max_event_streams, job, hours),
        name="activation",
    )
    running = RunningRouter(
        server,
        store,
        health,
        bound,
        metrics,
        active,
        activation,
        feed,
        job,
        hours,
        metrics_server,
        metrics_bound,
    )
    hours.start()
    if wait_active:
        try:
            await running.wait_active()
        except BaseException:
            await running.stop(0)
            raise
    return running


async def _open_store(database_url: str, reporting_database_url: str | None) -> Store:
    """The store, or a StartupError saying what to fix: at start, a server that cannot
    be reached is the operator's to fix (a wrong URL, PostgreSQL not started yet)."""
    try:
        return await Store.open(database_url, reporting_dsn=reporting_database_url)
    except StoreUnavailable as error:
        raise StartupError(
            f"{error}; is PostgreSQL running there? Check --database-url (ROUTER_DATABASE_URL)"
        ) from error


def _listen(server: grpc.aio.Server, host: str, port: int, tls: ServerTls | None) -> int:
    """Bind the gRPC port; the port bound (`port` 0 picks one).

    The port is tried first with a plain socket, bound as gRPC binds it: gRPC reports
    any failure as "Failed to bind" (and logs its own lines), while the socket says
    which failure it is: in use, not allowed, no such address."""
    refused = _bind_error(host, port)
    if refused is not None:
        if refused.errno == errno.EADDRINUSE:
            raise StartupError(
                f"cannot serve gRPC: {host}:{port} is in use (another contact-router, or "
                "another program, listens there): stop it, or choose another port "
                "(--port, ROUTER_PORT)"
            )
        raise StartupError(
            f"cannot listen on {host}:{port}: {refused.strerror or refused}: check "
            "--host and --port (ROUTER_HOST, ROUTER_PORT)"
        )
    address = f"{host}:{port}"
    try:
        if tls is None:
            return server.add_insecure_port(address)
        credentials = grpc.ssl_server_credentials(
            [(tls.private_key, tls.certificate_chain)],
            root_certificates=tls.client_ca,
            require_client_auth=tls.client_ca is not None,
        )
        return server.add_secure_port(address, credentials)
    except RuntimeError as error:
        hint = "" if tls is None else " (with TLS: do the certificate and key files match?)"
        raise StartupError(f"cannot listen on {address}: gRPC refused the address{hint}") from error


def _bind_error(host: str, port: int) -> OSError | None:
    """Why `host:port` cannot be bound now, or None if it can (or `port` is 0)."""
    if port == 0:
        return None
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as error:
        return error
    for family, kind, protocol, _, address in addresses:
        with socket.socket(family, kind, protocol) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as error:
                return error
    return None


def _owner_of(active: ActiveSwitchboard) -> OwnerOf:
    """For the access check: which agent holds an offer or a contact right now."""

    def owner_of(kind: str, value: str) -> str | None:
        switchboard = active.switchboard
        if switchboard is None:
            return None
        if kind == "offer":
            offer = switchboard.router.offer(value)
            return None if offer is None else offer.agent_id
        try:
            return switchboard.router.contact(value).agent_id
        except NotFound:
            return None

    return owner_of


async def _activate(
    store: Store,
    policy: RoutingPolicy,
    metrics: RouterMetrics,
    active: ActiveSwitchboard,
    health: health_aio.HealthServicer,
    feed: QueueFeed,
    max_event_streams: int,
    retention: RetentionJob,
    hours: HoursFile,
) -> None:
    """Wait for the active lock (as a hot standby, router/standby.py), take over the core
    kept warm meanwhile (or rebuild the queue from PostgreSQL), start serving."""
    warm = await stand_by(store, active, policy)
    started = time.perf_counter()
    router = warm or Router(policy)
    hours.use(router.hours.use)
    hours.use(lambda _: feed.changed())  # WatchQueue shows new hours at once
    switchboard = Switchboard(router, store)
    store.writer.on_batch = metrics.observe_batch
    switchboard.observers.append(lambda events: metrics.observe_events(events, time.time()))
    watch = ServiceLevelWatch(metrics.rolling, policy)
    switchboard.observers.append(watch.observe)
    switchboard.observers.append(lambda events: feed.changed())
    await store.reports.save_channel_targets(policy)

    def on_health(healthy: bool) -> None:
        metrics.db_available.set(1 if healthy else 0)
        serving = healthy and not store.writer.lost.is_set()
        task = asyncio.ensure_future(set_serving(health, serving=serving))
        task.add_done_callback(lambda t: t.cancelled() or t.exception())

    store.writer.on_health = on_health
    # The restore makes millions of objects that all live on, and none of them garbage:
    # the cyclic collector, run every few hundred allocations, would only walk them
    # again and again (a third of the restore's time at 500,000 contacts).
    gc.disable()
    try:
        await switchboard.start(warm=warm is not None)
    finally:
        # Everything alive now (code, the restored queue) lives as long as the process
        # or near enough: keep it out of the cyclic collector's full passes, which at
        # 200,000 queued contacts took 0.74 s each (bench/RESULTS.md).
        gc.freeze()
        gc.enable()
    reporting = Reporting(store.reports, policy, watch)
    events = EventHub(store.events, max_streams=max_event_streams)
    await events.start()
    active.serve(switchboard, reporting, events)
    await set_serving(health, serving=store.writer.healthy)
    retention.start()
    log.info(
        "router_active",
        restore_seconds=round(time.perf_counter() - started, 3),
        held_calls=active.held_calls,
    )


async def set_serving(health: health_aio.HealthServicer, *, serving: bool) -> None:
    """Readiness: the overall status and each router service."""
    status = (
        health_pb2.HealthCheckResponse.SERVING
        if serving
        else health_pb2.HealthCheckResponse.NOT_SERVING
    )
    for name in ("", *SERVICE_NAMES):
        await health.set(name, status)


async def serve(settings: Settings, tracing: Tracing | None = None) -> int:
    """Run until SIGTERM or SIGINT, then shut down cleanly: exit status 0.

    Exit status 1 if another router took the active lock from this one (after a
    database outage, say): this process's memory is no longer the truth, and its
    supervisor should start it again, as a standby.
    """
    embedded: EmbeddedPostgres | None = None
    url = settings.database_url
    if url is None:
        embedded = EmbeddedPostgres(settings.data_dir / "postgres")
        url = await asyncio.to_thread(embedded.start)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    status = 0
    try:
        running = await start_router(
            url,
            settings.policy,
            settings.host,
            settings.port,
            settings.metrics_port,
            wait_active=False,
            tokens=settings.tokens,
            tls=settings.tls,
            tracing=tracing,
            watch=settings.watch,
            reporting_database_url=settings.reporting_database_url,
            max_event_streams=settings.max_event_streams,
            retention=settings.retention,
            hours=HoursFile(settings.hours_file, settings.policy.time_zone),
        )
        loop.add_signal_handler(signal.SIGHUP, running.hours.reload)
        stopping = asyncio.create_task(stop.wait())
        lost = asyncio.create_task(running.wait_lost())
        await asyncio.wait({stopping, lost}, return_when=asyncio.FIRST_COMPLETED)
        if lost.done():
            error = lost.exception()
            log.error(
                "router_no_longer_active",
                error=repr(error) if error else "another router holds the active lock",
            )
            status = 1
        else:
            lost.cancel()
            log.info("router_stopping")

        def again() -> None:
            log.warning(
                "router_already_stopping",
                within_seconds=settings.shutdown_grace,
                hint="ROUTER_SHUTDOWN_GRACE_SECONDS bounds the shutdown",
            )

        # The handlers stay while it stops: removed, a second Ctrl-C (or a SIGINT sent
        # to the process and to its group) would raise KeyboardInterrupt mid-shutdown.
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, again)
        await running.stop(settings.shutdown_grace)
    finally:
        if tracing is not None:
            # Exports the spans still buffered; bounded by OTEL_BSP_EXPORT_TIMEOUT.
            await asyncio.to_thread(tracing.shutdown)
        if embedded is not None:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(embedded.stop)
    return status
