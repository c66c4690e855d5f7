"""The Node.js example client (examples/node-client), written from the .proto alone, against a
real router: the contract works outside Python, what it did is recorded in PostgreSQL, and it
reads the standard rich error details (google.rpc.Status with ErrorInfo, BadRequest, RetryInfo)."""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from contactrouter.v1 import contact_router_pb2 as pb
from contactrouter.v1 import contact_router_pb2_grpc as pb_grpc

from router.domain import RoutingPolicy
from router.errors import NotActive
from router.server import RunningRouter, start_router
from tests.acceptance.ports import free_port

CLIENT_DIR = Path(__file__).resolve().parents[2] / "examples" / "node-client"
NPM_CI_TIMEOUT = 180.0
# The client bounds itself to 30 s; this only catches a client that does not.
CLIENT_TIMEOUT = 60.0

STEPS = [
    "submit",
    "submit-duplicate",
    "invalid-argument",
    "sign-in",
    "stream-offers",
    "offer",
    "accept",
    "end",
    "complete",
    "get-contact",
    "cancel-stream",
    "sign-out",
]


def dependencies_installed() -> bool:
    """Whether a finished npm install matches package-lock.json (npm writes its hidden
    lockfile node_modules/.package-lock.json last)."""
    installed = CLIENT_DIR / "node_modules" / ".package-lock.json"
    locked = CLIENT_DIR / "package-lock.json"
    return installed.is_file() and installed.stat().st_mtime >= locked.stat().st_mtime


@pytest.fixture
def policy() -> RoutingPolicy:
    """The defaults that `make run` serves with (a phone reserve of 1), unlike other tests."""
    return RoutingPolicy()


@pytest.fixture(scope="module")
def node() -> str:
    """The node executable, with the client's dependencies installed (`npm ci` if needed)."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not on PATH: the Node.js example client cannot run")
    # Two test modules use it, and make test's workers may run both at once: on a fresh
    # clone, two npm ci in one folder tore each other's node_modules apart.
    with open(INSTALL_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not dependencies_installed():
            install()
    return node


INSTALL_LOCK = (
    Path(tempfile.gettempdir())
    / f"contact-router-npm-{hashlib.sha256(str(CLIENT_DIR).encode()).hexdigest()[:12]}.lock"
)
"""One lock per clone (the name is stable across processes, unlike hash())."""


def install() -> None:
    """npm ci in the client's folder."""
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not on PATH: cannot install the Node.js client's dependencies")
    try:
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=CLIENT_DIR,
            capture_output=True,
            text=True,
            timeout=NPM_CI_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"npm ci in {CLIENT_DIR} took longer than {NPM_CI_TIMEOUT} s")
    assert done.returncode == 0, f"npm ci failed:\n{done.stdout}\n{done.stderr}"


async def run_client(node: str, target: str) -> tuple[int, str, str]:
    """Run `node client.js <target>`: its exit code, stdout and stderr."""
    process = await asyncio.create_subprocess_exec(
        node,
        "client.js",
        target,
        cwd=CLIENT_DIR,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), CLIENT_TIMEOUT)
    except TimeoutError:
        process.kill()
        await process.wait()
        pytest.fail(f"node client.js {target} ran longer than {CLIENT_TIMEOUT} s")
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def one_json_line(out: str) -> dict[str, Any]:
    """What the client printed on stdout: exactly one JSON line."""
    lines = out.strip().splitlines()
    assert len(lines) == 1, f"expected one JSON line on stdout, got:\n{out}"
    printed: dict[str, Any] = json.loads(lines[0])
    return printed


class TestNodeClient:
    async def test_node_client_completes_a_chat_contact(
        self,
        node: str,
        router_server: RunningRouter,
        contacts: pb_grpc.ContactServiceAsyncStub,
        db: asyncpg.Connection,
    ) -> None:
        """The Node client takes a chat contact from submission to completion, as recorded."""
        code, out, err = await run_client(node, f"127.0.0.1:{router_server.port}")

        assert code == 0, f"node client failed (exit {code}):\n{err}"
        summary = one_json_line(out)
        assert summary["ok"] is True
        assert summary["steps"] == STEPS
        # The refused submission, as decoded from grpc-status-details-bin.
        invalid = summary["invalid_argument"]
        assert invalid["code"] == "INVALID_ARGUMENT"
        assert (invalid["reason"], invalid["domain"]) == ("INVALID_FIELD", "contactrouter.v1")
        assert invalid["metadata"] == {"field": "channel"}
        [violation] = invalid["field_violations"]
        assert violation["field"] == "channel"
        assert invalid["message"] == f"channel: {violation['description']}"
        assert invalid["retry_delay_seconds"] is None
        contact_id: str = summary["contact_id"]
        agent_id: str = summary["agent_id"]

        got = await contacts.GetContact(pb.GetContactRequest(contact_id=contact_id))
        assert got.contact.state == pb.CONTACT_STATE_COMPLETED
        assert got.contact.channel == pb.CHANNEL_CHAT
        assert got.contact.disposition == "order-status"
        assert got.contact.agent_id == agent_id

        row = await db.fetchrow(
            "SELECT * FROM contact_timings WHERE contact_id = $1::uuid", contact_id
        )
        assert row is not None
        assert row["state"] == "completed"
        assert row["disposition"] == "order-status"
        assert row["channel"] == "chat"
        assert row["agent_id"] == agent_id
        assert row["offer_count"] == 1
        assert row["handle_seconds"] == pytest.approx(row["talk_seconds"] + row["acw_seconds"])
        kinds = [
            r["kind"]
            for r in await db.fetch(
                "SELECT kind FROM contact_events WHERE contact_id = $1::uuid ORDER BY id",
                contact_id,
            )
        ]
        assert kinds == ["submitted", "offered", "answered", "ended", "completed"]

        # The duplicate and the refused submission created nothing.
        stored = await db.fetch("SELECT id::text AS id, attributes FROM contacts")
        assert [r["id"] for r in stored] == [contact_id]
        assert json.loads(stored[0]["attributes"])["order"] == "A-1042"

        last = await db.fetchrow(
            "SELECT kind, status, connected FROM agent_status_log WHERE agent_id = $1 "
            "ORDER BY id DESC LIMIT 1",
            agent_id,
        )
        assert last is not None
        assert (last["kind"], last["status"], last["connected"]) == ("signed_out", "offline", False)

    async def test_node_client_reads_the_retry_hint_of_a_standby(
        self, node: str, router_server: RunningRouter, database_url: str, policy: RoutingPolicy
    ) -> None:
        """Against a standby (another router is active on its database), the first call fails
        UNAVAILABLE, and the client prints the ErrorInfo reason and the RetryInfo delay."""
        standby = await start_router(database_url, policy, wait_active=False)
        try:
            code, out, err = await run_client(node, f"127.0.0.1:{standby.port}")
        finally:
            await standby.stop(grace=1.0)

        assert code == 1, f"expected a failure:\n{out}\n{err}"
        failure = one_json_line(out)
        assert failure["ok"] is False
        error = failure["error"]
        assert error["code"] == "UNAVAILABLE"
        assert "standby" in error["message"]
        assert (error["reason"], error["domain"]) == ("STANDBY", "contactrouter.v1")
        assert error["retry_delay_seconds"] == NotActive.retry_after
        assert error["field_violations"] == []
        assert "UNAVAILABLE" in err

    async def test_node_client_reports_an_unreachable_router(self, node: str) -> None:
        """Without a router to talk to, the client exits 1 with the error: UNAVAILABLE from the
        connection itself, so no reason and no details."""
        code, out, err = await run_client(node, f"127.0.0.1:{free_port()}")

        assert code == 1
        error = one_json_line(out)["error"]
        assert error["code"] == "UNAVAILABLE"
        assert error["reason"] is None
        assert error["retry_delay_seconds"] is None
        assert "UNAVAILABLE" in err


async def start_consumer(node: str, *args: str) -> asyncio.subprocess.Process:
    """`node events.js ARGS`, its stdout piped."""
    return await asyncio.create_subprocess_exec(
        node,
        "events.js",
        *args,
        cwd=CLIENT_DIR,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def recorded_events(db: asyncpg.Connection) -> list[tuple[str, str]]:
    """(kind, contact id or agent id) of every row of both event tables, in commit order."""
    rows = await db.fetch(
        "SELECT seq, kind, contact_id::text AS who FROM contact_events "
        "UNION ALL SELECT seq, kind, agent_id FROM agent_status_log ORDER BY seq"
    )
    return [(r["kind"], r["who"]) for r in rows]


def printed_event(line: bytes) -> tuple[str, str]:
    event: dict[str, Any] = json.loads(line)
    return event["kind"], event["contact_id"] if event["type"] == "contact" else event["agent_id"]


class TestNodeEventConsumer:
    async def test_the_consumer_resumes_from_its_stored_cursor(
        self,
        node: str,
        router_server: RunningRouter,
        contacts: pb_grpc.ContactServiceAsyncStub,
        agents: pb_grpc.AgentServiceAsyncStub,
        db: asyncpg.Connection,
        tmp_path: Path,
    ) -> None:
        """events.js stops after 3 events, is started again while more events come, and
        has printed every row of both event tables once, in commit order."""
        target = f"127.0.0.1:{router_server.port}"
        cursor_file = tmp_path / "cursor"
        await agents.SignIn(pb.SignInRequest(agent_id="ann", initial_status=pb.AGENT_STATUS_AWAY))
        for n in range(3):
            await contacts.SubmitContact(
                pb.SubmitContactRequest(
                    idempotency_key=f"k-{n}", channel=pb.CHANNEL_EMAIL, customer_id=f"c-{n}"
                )
            )
        first = await start_consumer(node, target, str(cursor_file), "--stop-after", "3")
        out, err = await asyncio.wait_for(first.communicate(), CLIENT_TIMEOUT)
        assert first.returncode == 0, err.decode()
        lines = out.splitlines()
        assert len(lines) == 3
        assert cursor_file.read_text().strip() == json.loads(lines[-1])["cursor"]

        second = await start_consumer(node, target, str(cursor_file))
        assert second.stdout is not None
        try:
            for n in range(3, 6):
                await contacts.SubmitContact(
                    pb.SubmitContactRequest(
                        idempotency_key=f"k-{n}", channel=pb.CHANNEL_CHAT, customer_id=f"c-{n}"
                    )
                )
            expected = await recorded_events(db)
            while len(lines) < len(expected):
                line = await asyncio.wait_for(second.stdout.readline(), CLIENT_TIMEOUT)
                assert line, "the consumer ended early"
                lines.append(line)
            second.terminate()
            rest, err = await asyncio.wait_for(second.communicate(), CLIENT_TIMEOUT)
        finally:
            if second.returncode is None:
                second.kill()
                await second.wait()
        assert second.returncode == 0, err.decode()
        lines += rest.splitlines()
        assert [printed_event(line) for line in lines] == expected
        submitted = [json.loads(line) for line in lines if json.loads(line)["kind"] == "submitted"]
        assert [e["customer_id"] for e in submitted] == [f"c-{n}" for n in range(6)]
        assert submitted[0]["channel"] == "CHANNEL_EMAIL"
        assert cursor_file.read_text().strip() == json.loads(lines[-1])["cursor"]
