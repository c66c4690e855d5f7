"""Settings from environment variables and an optional TOML file, checked at start."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from router.config import Settings, setting_names
from router.domain import Channel
from router.errors import ConfigError


class TestSettings:
    def test_defaults(self) -> None:
        """With nothing set: loopback, port 50051, metrics 9464, the brief's targets."""
        settings = Settings.from_env({})
        assert (settings.host, settings.port, settings.metrics_port) == ("127.0.0.1", 50051, 9464)
        assert settings.database_url is None
        assert settings.policy.of(Channel.PHONE).answer_target == 20.0
        assert settings.policy.of(Channel.EMAIL).answer_target == 3600.0
        assert settings.policy.of(Channel.CHAT).default_capacity == 3
        assert settings.policy.phone_reserve == 1

    def test_environment_sets_routing(self) -> None:
        """Targets, capacities and the reserve come from ROUTER_* variables."""
        settings = Settings.from_env(
            {
                "ROUTER_PHONE_TARGET_SECONDS": "15",
                "ROUTER_CHAT_CAPACITY": "5",
                "ROUTER_PHONE_RESERVE": "3",
                "ROUTER_METRICS_PORT": "off",
            }
        )
        assert settings.policy.of(Channel.PHONE).answer_target == 15.0
        assert settings.policy.of(Channel.CHAT).default_capacity == 5
        assert settings.policy.phone_reserve == 3
        assert settings.metrics_port is None

    @pytest.mark.parametrize(
        ("name", "raw"),
        [
            ("ROUTER_PORT", "http"),
            ("ROUTER_PORT", "70000"),
            ("ROUTER_CHAT_CAPACITY", "21"),
            ("ROUTER_PHONE_TARGET_SECONDS", "0"),
            ("ROUTER_LOG_FORMAT", "xml"),
            ("ROUTER_LOG_LEVEL", "loud"),
        ],
    )
    def test_malformed_value_names_the_variable(self, name: str, raw: str) -> None:
        """A bad value stops the start with a message naming the variable."""
        with pytest.raises(ConfigError, match=name):
            Settings.from_env({name: raw})

    def test_toml_file_with_environment_overriding(self, tmp_path: Path) -> None:
        """The file supplies settings; a variable in the environment wins."""
        file = tmp_path / "router.toml"
        file.write_text('phone_reserve = 2\nchat_target_seconds = 45\nhost = "0.0.0.0"\n')
        settings = Settings.from_env({"ROUTER_CONFIG_FILE": str(file), "ROUTER_PHONE_RESERVE": "4"})
        assert settings.policy.phone_reserve == 4
        assert settings.policy.of(Channel.CHAT).answer_target == 45.0
        assert settings.host == "0.0.0.0"

    def test_toml_unknown_key_is_refused(self, tmp_path: Path) -> None:
        """A misspelt key is an error naming it, not silently ignored."""
        file = tmp_path / "router.toml"
        file.write_text("phone_reserv = 2\n")
        with pytest.raises(ConfigError, match="phone_reserv"):
            Settings.from_env({"ROUTER_CONFIG_FILE": str(file)})

    def test_toml_malformed_or_missing_file(self, tmp_path: Path) -> None:
        """An unreadable or invalid file is an error naming ROUTER_CONFIG_FILE."""
        with pytest.raises(ConfigError, match="ROUTER_CONFIG_FILE"):
            Settings.from_env({"ROUTER_CONFIG_FILE": str(tmp_path / "missing.toml")})
        bad = tmp_path / "bad.toml"
        bad.write_text("phone_reserve = = 2\n")
        with pytest.raises(ConfigError, match="ROUTER_CONFIG_FILE"):
            Settings.from_env({"ROUTER_CONFIG_FILE": str(bad)})

    def test_configuration_page_lists_every_setting(self) -> None:
        """docs/configuration.md's table and the settings read here are the same set."""
        page = (Path(__file__).parents[2] / "docs" / "configuration.md").read_text("utf-8")
        rows = re.findall(r"^\| `(ROUTER_[A-Z_<>]+)` \|", page, re.MULTILINE)
        documented = {
            row.replace("<CHANNEL>", channel.upper())
            for row in rows
            for channel in Channel
            if row.startswith("ROUTER_<CHANNEL>_") or channel is Channel.PHONE
        }
        assert documented == setting_names() | {"ROUTER_PHONE_CAPACITY"}
        assert "ROUTER_PHONE_CAPACITY" not in setting_names()  # a call is exclusive


def write_pair(folder: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, as PEM files `name`.crt/.key."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / f"{name}.crt", folder / f"{name}.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class TestStrictValues:
    @pytest.mark.parametrize(
        ("name", "raw"),
        [
            ("ROUTER_PORT", "50051.9"),
            ("ROUTER_PORT", "5e4"),
            ("ROUTER_METRICS_PORT", "9464.5"),
            ("ROUTER_PHONE_RESERVE", "1.5"),
            ("ROUTER_CHAT_CAPACITY", "2.0"),
            ("ROUTER_CHAT_MAX_QUEUE", "1e3"),
            ("ROUTER_EMAIL_MAX_PER_HOUR", "0x10"),
            ("ROUTER_REMEMBERED_CUSTOMERS", "nan"),
            ("ROUTER_PHONE_TARGET_SECONDS", "nan"),
            ("ROUTER_PHONE_TARGET_SECONDS", "inf"),
            ("ROUTER_OFFER_TIMEOUT_SECONDS", "infinity"),
            ("ROUTER_SHUTDOWN_GRACE_SECONDS", "-inf"),
            ("ROUTER_SKILL_RELAX_SECONDS", "1e300"),
        ],
    )
    def test_whole_numbers_and_finite_seconds(self, name: str, raw: str) -> None:
        """A count with a fraction, or seconds that are not finite, are refused by name
        (ROUTER_PORT=50051.9 used to become port 50051)."""
        with pytest.raises(ConfigError, match=name):
            Settings.from_env({name: raw})


class TestCommandLineOptions:
    def test_options_win_over_environment_over_file(self, tmp_path: Path) -> None:
        """A serve option beats the environment, which beats the file; --config names the
        file instead of ROUTER_CONFIG_FILE."""
        ignored = tmp_path / "ignored.toml"
        ignored.write_text("phone_reserve = 7\n")
        file = tmp_path / "router.toml"
        file.write_text('port = 1111\nhost = "10.0.0.1"\nmetrics_port = 2222\nphone_reserve = 3\n')
        settings = Settings.from_env(
            {"ROUTER_CONFIG_FILE": str(ignored), "ROUTER_PORT": "3333", "ROUTER_HOST": "::1"},
            options={"ROUTER_CONFIG_FILE": str(file), "ROUTER_PORT": "4444"},
        )
        assert settings.port == 4444
        assert settings.host == "::1"
        assert settings.metrics_port == 2222
        assert settings.policy.phone_reserve == 3

    def test_a_bad_option_is_named_as_typed(self) -> None:
        """An option's bad value is reported under the option's name."""
        with pytest.raises(ConfigError, match="--port"):
            Settings.from_env({}, options={"ROUTER_PORT": "50051.9"})


class TestTlsPair:
    def test_a_matching_pair_is_read(self, tmp_path: Path) -> None:
        cert, key = write_pair(tmp_path, "router")
        settings = Settings.from_env(
            {"ROUTER_TLS_CERT_FILE": str(cert), "ROUTER_TLS_KEY_FILE": str(key)}
        )
        assert settings.tls is not None
        assert settings.tls.certificate_chain == cert.read_bytes()

    def test_a_key_of_another_pair_names_both_files(self, tmp_path: Path) -> None:
        """The certificate of one pair with the key of another is refused at start, naming
        both files (it used to end in `RuntimeError: Failed to bind to address`)."""
        cert, _ = write_pair(tmp_path, "one")
        _, other_key = write_pair(tmp_path, "two")
        with pytest.raises(ConfigError) as refused:
            Settings.from_env(
                {"ROUTER_TLS_CERT_FILE": str(cert), "ROUTER_TLS_KEY_FILE": str(other_key)}
            )
        assert str(cert) in str(refused.value)
        assert str(other_key) in str(refused.value)
        assert "does not match" in str(refused.value)

    def test_files_that_are_not_pem_are_named(self, tmp_path: Path) -> None:
        cert, key = write_pair(tmp_path, "router")
        garbage = tmp_path / "garbage.pem"
        garbage.write_text("not a certificate\n")
        with pytest.raises(ConfigError, match=r"garbage\.pem"):
            Settings.from_env(
                {"ROUTER_TLS_CERT_FILE": str(garbage), "ROUTER_TLS_KEY_FILE": str(key)}
            )
        with pytest.raises(ConfigError, match="ROUTER_TLS_CLIENT_CA_FILE"):
            Settings.from_env(
                {
                    "ROUTER_TLS_CERT_FILE": str(cert),
                    "ROUTER_TLS_KEY_FILE": str(key),
                    "ROUTER_TLS_CLIENT_CA_FILE": str(garbage),
                }
            )


class TestRetention:
    def test_off_by_default(self) -> None:
        """Nothing is forgotten unless asked: both periods are 0 (forever)."""
        retention = Settings.from_env({}).retention
        assert (retention.personal_months, retention.timings_months) == (0, 0)
        assert not retention.enabled

    def test_personal_data_within_timings(self) -> None:
        """N months of personal data and M of timings, M >= N, read with the job's pace."""
        retention = Settings.from_env(
            {
                "ROUTER_PERSONAL_DATA_MONTHS": "6",
                "ROUTER_TIMINGS_MONTHS": "24",
                "ROUTER_RETENTION_INTERVAL_SECONDS": "3600",
                "ROUTER_RETENTION_BATCH_SIZE": "1000",
                "ROUTER_RETENTION_PAUSE_SECONDS": "0.5",
            }
        ).retention
        assert (retention.personal_months, retention.timings_months) == (6, 24)
        assert (retention.interval, retention.batch_size, retention.pause) == (3600.0, 1000, 0.5)
        assert Settings.from_env({"ROUTER_PERSONAL_DATA_MONTHS": "6"}).retention.enabled

    @pytest.mark.parametrize(
        ("env", "name"),
        [
            (
                {"ROUTER_PERSONAL_DATA_MONTHS": "13", "ROUTER_TIMINGS_MONTHS": "12"},
                "ROUTER_PERSONAL_DATA_MONTHS",
            ),
            ({"ROUTER_TIMINGS_MONTHS": "12"}, "ROUTER_PERSONAL_DATA_MONTHS"),
            ({"ROUTER_TIMINGS_MONTHS": "-1"}, "ROUTER_TIMINGS_MONTHS"),
            ({"ROUTER_PERSONAL_DATA_MONTHS": "1201"}, "ROUTER_PERSONAL_DATA_MONTHS"),
            ({"ROUTER_PERSONAL_DATA_MONTHS": "1.5"}, "ROUTER_PERSONAL_DATA_MONTHS"),
            ({"ROUTER_RETENTION_BATCH_SIZE": "0"}, "ROUTER_RETENTION_BATCH_SIZE"),
            ({"ROUTER_RETENTION_INTERVAL_SECONDS": "0"}, "ROUTER_RETENTION_INTERVAL_SECONDS"),
            ({"ROUTER_RETENTION_PAUSE_SECONDS": "-1"}, "ROUTER_RETENTION_PAUSE_SECONDS"),
        ],
    )
    def test_refused_by_name(self, env: dict[str, str], name: str) -> None:
        """Personal data kept longer than the rows, or out of bounds: ConfigError naming it."""
        with pytest.raises(ConfigError, match=name):
            Settings.from_env(env)


class TestTeamsFile:
    def test_agents_are_mapped_to_their_team(self, tmp_path: Path) -> None:
        path = tmp_path / "teams.toml"
        path.write_text('"Returns West" = ["alice", "bob"]\norders = ["carol"]\n')
        settings = Settings.from_env({"ROUTER_TEAMS_FILE": str(path)})
        assert dict(settings.policy.teams) == {
            "alice": "Returns West",
            "bob": "Returns West",
            "carol": "orders",
        }
        assert dict(Settings.from_env({}).policy.teams) == {}

    @pytest.mark.parametrize(
        ("text", "says"),
        [
            ('orders = "alice"', "must be a list of agent ids"),
            ('" orders" = ["alice"]', "is not a team"),
            ('orders = ["ann smith"]', "is not an agent id"),
            ('orders = ["alice"]\nreturns = ["alice"]', "alice is in 'orders' and 'returns'"),
            ("orders = [", "is not valid TOML"),
        ],
    )
    def test_a_bad_file_stops_the_start_naming_the_variable(
        self, tmp_path: Path, text: str, says: str
    ) -> None:
        path = tmp_path / "teams.toml"
        path.write_text(text)
        with pytest.raises(ConfigError, match="ROUTER_TEAMS_FILE") as refused:
            Settings.from_env({"ROUTER_TEAMS_FILE": str(path)})
        assert says in str(refused.value)
