"""Every command that talks to a router (report, staffing, simulate) reaches a secured one
with the same flags, and says in one line what is wrong when it cannot."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import grpc
import pytest
from contact_router_tools.connection import RouterConnection, field_flags
from contact_router_tools.report_command import unsplit_report
from contactrouter.v1 import contact_router_pb2 as pb
from contactrouter.v1 import contact_router_pb2_grpc as pb_grpc
from google.rpc.error_details_pb2 import BadRequest
from google.rpc.status_pb2 import Status
from grpc_status import rpc_status

from router.api.access import Tokens
from router.api.errors import error_status
from router.config import ServerTls
from router.domain import Channel, RoutingPolicy
from router.errors import NotActive, RouterError
from router.server import RunningRouter, start_router
from tests.acceptance.ports import free_port
from tests.acceptance.test_access_control import Pki, pki, tokens
from tests.acceptance.test_reporting_cli import command

__all__ = ["pki", "tokens"]  # fixtures shared with the access-control tests

FORECAST = "interval_start,calls,aht_seconds\n2026-03-02T10:00:00+00:00,100,180\n"


@pytest.fixture
async def mutual_tls(
    database_url: str, pki: Pki, tokens: tuple[Tokens, dict[str, str]]
) -> AsyncIterator[RunningRouter]:
    """A router with tokens that requires TLS with a client certificate."""
    running = await start_router(
        database_url,
        RoutingPolicy(phone_reserve=0),
        tokens=tokens[0],
        tls=ServerTls(pki.server_chain, pki.server_key, client_ca=pki.ca),
    )
    try:
        yield running
    finally:
        await running.stop(grace=1.0)


@pytest.fixture
def files(tmp_path: Path, pki: Pki, tokens: tuple[Tokens, dict[str, str]]) -> dict[str, Path]:
    """The operator's files: CA, client certificate and key, tokens, a forecast."""
    made = {
        "ca": pki.ca,
        "cert": pki.client_chain,
        "key": pki.client_key,
        "admin": tokens[1]["admin"].encode(),
        "reporting": tokens[1]["reporting"].encode() + b"\n",
        "gateway": tokens[1]["gateway"].encode(),
        "forecast": FORECAST.encode(),
    }
    for name, content in made.items():
        (tmp_path / name).write_bytes(content)
    return {name: tmp_path / name for name in made}


def secure(router: RunningRouter, files: dict[str, Path]) -> list[str]:
    return [
        "--router",
        f"127.0.0.1:{router.port}",
        "--tls-ca",
        str(files["ca"]),
        "--client-cert",
        str(files["cert"]),
        "--client-key",
        str(files["key"]),
    ]


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


class TestSecuredRouter:
    async def test_report_with_tls_and_a_token_file(
        self, mutual_tls: RunningRouter, files: dict[str, Path]
    ) -> None:
        """report: CA, client certificate and key, and a reporting token from a file."""
        code, out, err = await command(
            "report", "today", *secure(mutual_tls, files), "--token-file", str(files["reporting"])
        )
        assert code == 0, err
        assert "\nContacts\n" in out

    async def test_staffing_with_the_token_in_the_environment(
        self, mutual_tls: RunningRouter, files: dict[str, Path]
    ) -> None:
        """staffing: the token from CONTACT_ROUTER_TOKEN when no --token-file is given."""
        code, out, err = await command(
            "staffing", "--forecast", str(files["forecast"]), "--format", "json",
            *secure(mutual_tls, files),
            env={"CONTACT_ROUTER_TOKEN": files["reporting"].read_text().strip()},
        )  # fmt: skip
        assert code == 0, err
        assert [row["agents"] for row in json.loads(out)["intervals"]] == [14]

    async def test_simulate_with_tls_and_an_admin_token(
        self, mutual_tls: RunningRouter, files: dict[str, Path]
    ) -> None:
        """simulate: the same flags, and --format json."""
        code, out, err = await command(
            "simulate", *secure(mutual_tls, files), "--token-file", str(files["admin"]),
            "--duration", "2", "--drain", "2", "--agents", "2", "--seed", "3", "--quiet",
            "--format", "json",
            within=90,
        )  # fmt: skip
        assert code == 0, err
        document = json.loads(out)
        assert document["router"] == f"127.0.0.1:{mutual_tls.port}"
        assert document["error_count"] == 0
        assert document["server"]["report"] is not None

    async def test_no_token_says_how_to_give_one(
        self, mutual_tls: RunningRouter, files: dict[str, Path]
    ) -> None:
        code, _, err = await command("report", "today", *secure(mutual_tls, files))
        assert code == 1
        line = one_line(err)
        assert "--token-file" in line
        assert "CONTACT_ROUTER_TOKEN" in line

    async def test_a_token_of_another_role_is_named(
        self, mutual_tls: RunningRouter, files: dict[str, Path]
    ) -> None:
        code, _, err = await command(
            "report", "today", *secure(mutual_tls, files), "--token-file", str(files["gateway"])
        )
        assert code == 1
        assert "reporting or admin token" in one_line(err)

    async def test_plaintext_to_a_tls_router_says_to_give_the_ca(
        self, mutual_tls: RunningRouter, files: dict[str, Path]
    ) -> None:
        code, _, err = await command(
            "report", "today", "--router", f"127.0.0.1:{mutual_tls.port}",
            "--token-file", str(files["reporting"]),
        )  # fmt: skip
        assert code == 1
        line = one_line(err)
        assert f"127.0.0.1:{mutual_tls.port}" in line
        assert "--tls-ca" in line

    async def test_no_client_certificate_names_the_flags_that_give_one(
        self, mutual_tls: RunningRouter, files: dict[str, Path]
    ) -> None:
        """The router asks for a client certificate and none was given."""
        code, _, err = await command(
            "report", "today", "--router", f"127.0.0.1:{mutual_tls.port}",
            "--tls-ca", str(files["ca"]), "--token-file", str(files["reporting"]),
        )  # fmt: skip
        assert code == 1
        line = one_line(err)
        assert "--client-cert" in line
        assert "--client-key" in line

    async def test_a_ca_that_did_not_sign_the_routers_certificate(
        self, mutual_tls: RunningRouter, files: dict[str, Path]
    ) -> None:
        """The client's own certificate given as the CA: the handshake fails, in one line
        (gRPC's own log lines about it stay out of the terminal)."""
        code, _, err = await command(
            "report", "today", "--router", f"127.0.0.1:{mutual_tls.port}",
            "--tls-ca", str(files["cert"]), "--client-cert", str(files["cert"]),
            "--client-key", str(files["key"]), "--token-file", str(files["reporting"]),
        )  # fmt: skip
        assert code == 1
        line = one_line(err)
        assert "--tls-ca" in line
        assert "not signed by the CA given" in line


class TestFlags:
    @pytest.mark.parametrize("name", ["report", "staffing", "simulate"])
    async def test_the_connection_flags_are_the_same_everywhere(self, name: str) -> None:
        """The client's own certificate and key are --client-cert and --client-key, apart
        from serve's --tls-cert-file and --tls-key-file (the router's)."""
        code, out, err = await command(name, "--help")
        assert code == 0, err
        text = " ".join(out.split())
        for flag in ("--router", "--tls-ca FILE", "--client-cert FILE", "--client-key FILE"):
            assert flag in text
        assert "--token-file FILE" in text
        assert "--tls-cert" not in text
        assert "--tls-key" not in text


class TestOneLineErrors:
    @pytest.mark.parametrize(
        "args",
        [
            ("report", "today"),
            ("staffing", "--history", "today"),
            ("simulate", "--duration", "1", "--drain", "0", "--quiet"),
        ],
        ids=["report", "staffing", "simulate"],
    )
    async def test_no_router_running(self, args: tuple[str, ...]) -> None:
        """One line naming the address tried and what to do; exit 1."""
        address = f"127.0.0.1:{free_port()}"
        code, out, err = await command(*args, "--router", address)
        assert code == 1, (out, err)
        line = one_line(err)
        assert address in line
        assert "--router" in line
        assert "contact-router serve" in line
        assert "UNAVAILABLE" not in line

    async def test_the_charts_second_report_fails_like_every_call(self) -> None:
        """report --chart --by-skill asks for the report again, unsplit, for the chart:
        a failure there is a RouterError naming the address (one line), not a traceback."""
        router = RouterConnection(f"127.0.0.1:{free_port()}")
        split = pb.GetContactReportRequest(by_skill=True)
        async with router.channel() as channel:
            stub = pb_grpc.ReportingServiceStub(channel)
            with pytest.raises(RouterError, match=router.address):
                await unsplit_report(router, stub, split, pb.GetContactReportResponse())

    @pytest.mark.parametrize("flag", ["--token-file", "--tls-ca", "--client-cert"])
    async def test_a_missing_file_is_named(self, flag: str, tmp_path: Path) -> None:
        missing = tmp_path / "nowhere.pem"
        extra = ["--client-key", str(missing)] if flag == "--client-cert" else []
        code, _, err = await command("report", "today", flag, str(missing), *extra)
        assert code == 2
        line = one_line(err)
        assert flag in line
        assert str(missing) in line

    async def test_a_client_certificate_needs_its_key(self, tmp_path: Path) -> None:
        cert = tmp_path / "client.pem"
        cert.write_text("not read")
        code, _, err = await command("report", "today", "--client-cert", str(cert))
        assert code == 2
        assert "--client-key" in one_line(err)

    async def test_an_empty_token_file(self, tmp_path: Path) -> None:
        empty = tmp_path / "token"
        empty.write_text("\n")
        code, _, err = await command("staffing", "--history", "today", "--token-file", str(empty))
        assert code == 2
        assert "is empty" in one_line(err)

    async def test_a_missing_forecast_file(self, tmp_path: Path) -> None:
        code, _, err = await command("staffing", "--forecast", str(tmp_path / "f.csv"))
        assert code == 2
        line = one_line(err)
        assert "--forecast" in line
        assert "f.csv" in line

    async def test_phone_reserve_without_a_scenario_file(self) -> None:
        """simulate starts no router for a flags-only run, so it cannot set its reserve."""
        code, _, err = await command("simulate", "--phone-reserve", "2")
        assert code == 2
        line = one_line(err)
        assert "--phone-reserve" in line
        assert "scenario file" in line

    async def test_a_missing_scenario_file(self, tmp_path: Path) -> None:
        code, _, err = await command("simulate", str(tmp_path / "center.toml"))
        assert code == 2
        assert "center.toml" in one_line(err)


def answered(status: Status) -> grpc.aio.AioRpcError:
    """The error a stub raises for a call answered with `status`: its code and message,
    and the status itself in the trailer, as router.api.errors.abort sends it."""
    sent = rpc_status.to_status(status)
    return grpc.aio.AioRpcError(
        sent.code, grpc.aio.Metadata(), grpc.aio.Metadata(*sent.trailing_metadata), sent.details
    )


STAFFING_FLAGS = field_flags({"patience_seconds": "--patience", "with_abandonment": "--erlang-a"})


class TestWhatARefusalSays:
    """RouterConnection.explain reads the router's error details, not its message."""

    ROUTER = RouterConnection("127.0.0.1:50051")

    def test_the_refused_field_comes_from_the_bad_request(self) -> None:
        """The field and the problem are the field violation's, named by their flags,
        whatever the message says."""
        invalid = Status(code=grpc.StatusCode.INVALID_ARGUMENT.value[0], message="refused")
        violation = BadRequest.FieldViolation(
            field="patience_seconds", description="must be > 0 with with_abandonment"
        )
        invalid.details.add().Pack(BadRequest(field_violations=[violation]))
        line = self.ROUTER.explain(answered(invalid), flag_of=STAFFING_FLAGS)
        assert line == "--patience: must be > 0 with --erlang-a"

    def test_a_refusal_without_a_field_says_the_message(self) -> None:
        invalid = Status(code=grpc.StatusCode.INVALID_ARGUMENT.value[0], message="no: never")
        line = self.ROUTER.explain(answered(invalid), flag_of=STAFFING_FLAGS)
        assert line == "refused: no: never"

    def test_unavailable_says_when_to_try_again(self) -> None:
        """The router's RetryInfo gives the wait."""
        standby = NotActive("this router is a standby")
        line = self.ROUTER.explain(answered(error_status(standby)))
        assert f"try again in {NotActive.retry_after:g} s" in line
        assert "standby" in line


class TestWhatSimulateKnows:
    @pytest.fixture
    def policy(self) -> RoutingPolicy:
        """Phone answered within 30 s (not the default 20), short abandons up to 2 s."""
        defaults = RoutingPolicy()
        phone = replace(defaults.of(Channel.PHONE), answer_target=30.0)
        channels = {**defaults.channels, Channel.PHONE: phone}
        return RoutingPolicy(phone_reserve=0, short_abandon=2.0, channels=channels)

    async def test_a_run_at_router_reports_that_routers_policy(
        self, router_server: RunningRouter
    ) -> None:
        """A flags-only run counts service level against the thresholds the router says
        it has (its goals), and claims no phone reserve: it cannot know it."""
        code, out, err = await command(
            "simulate", "--router", f"127.0.0.1:{router_server.port}", "--duration", "2",
            "--drain", "2", "--agents", "2", "--seed", "3", "--quiet", "--format", "json",
            within=90,
        )  # fmt: skip
        assert code == 0, err
        document = json.loads(out)
        assert document["phone_reserve"] is None
        assert document["client"]["thresholds_seconds"]["phone"] == 30.0
        assert document["client"]["short_abandon_seconds"] == 2.0
