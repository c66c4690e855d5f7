"""The tokens file and the role table, without a server."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from router.api.access import Role, Tokens, digest_of, new_token, roles_for, token_entry
from router.errors import TokenError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tokens.toml"
    path.write_text(text)
    return path


class TestTokensFile:
    def test_entry_round_trip(self, tmp_path: Path) -> None:
        token = new_token()
        tokens = Tokens.load(write(tmp_path, token_entry(token, "desk-7", Role.AGENT, "alice")))
        principal = tokens.principal(token)
        assert principal is not None
        assert (principal.name, principal.role, principal.agent_id) == (
            "desk-7",
            Role.AGENT,
            "alice",
        )
        assert tokens.principal(token + "x") is None
        assert tokens.principal("") is None

    def test_only_the_digest_is_stored(self) -> None:
        token = new_token()
        entry = token_entry(token, "gw", Role.GATEWAY)
        assert token not in entry
        assert digest_of(token) in entry
        assert len(token) >= 43  # 256 bits, URL-safe base64

    @pytest.mark.parametrize(
        ("text", "complaint"),
        [
            ("", "no [[token]] entries"),
            ("[[token]]\nrole = 'gateway'\nsha256 = 'abc'\n", "64 hex digits"),
            (f"[[token]]\nrole = 'boss'\nsha256 = '{'a' * 64}'\n", "role must be one of"),
            (f"[[token]]\nrole = 'agent'\nsha256 = '{'a' * 64}'\n", "agent_id"),
            (
                f"[[token]]\nrole = 'gateway'\nagent_id = 'x'\nsha256 = '{'a' * 64}'\n",
                "agent_id",
            ),
            ("[[token]\n", "not valid TOML"),
        ],
    )
    def test_malformed_files_are_refused_with_the_reason(
        self, tmp_path: Path, text: str, complaint: str
    ) -> None:
        with pytest.raises(TokenError, match=re.escape(complaint)):
            Tokens.load(write(tmp_path, text))

    def test_missing_file(self, tmp_path: Path) -> None:
        with pytest.raises(TokenError, match="cannot read"):
            Tokens.load(tmp_path / "nope.toml")


class TestRoles:
    def test_each_service_has_its_role_and_probes_are_open(self) -> None:
        contact = roles_for("/contactrouter.v1.ContactService/SubmitContact")
        agent = roles_for("/contactrouter.v1.AgentService/StreamOffers")
        reporting = roles_for("/contactrouter.v1.ReportingService/GetQueueStatus")
        supervisor = roles_for("/contactrouter.v1.SupervisorService/CancelContact")
        assert (contact, agent, reporting, supervisor) == (
            frozenset({Role.GATEWAY}),
            frozenset({Role.AGENT}),
            frozenset({Role.REPORTING, Role.SUPERVISOR}),
            frozenset({Role.SUPERVISOR}),
        )
        assert roles_for("/contactrouter.v1.FutureService/Anything") == frozenset()
        assert roles_for("/grpc.health.v1.Health/Check") is None
