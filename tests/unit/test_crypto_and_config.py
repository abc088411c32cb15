"""Contact data at rest (``FieldCipher``), the settings object, and where the secret comes from."""

from __future__ import annotations

import base64
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import ValidationError

from frontdesk.adapters.crypto import DecryptionFailed, FieldCipher
from frontdesk.bootstrap import SECRET_FILE_NAME, resolve_secret
from frontdesk.config import Settings
from frontdesk.domain.errors import ConfigurationError

SECRET = "a-test-secret-that-is-long-enough-0123456789"
OTHER_SECRET = "another-secret-that-is-long-enough-9876543210"


# --- FieldCipher -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", ["+12025550143", "avery@example.com", "María Fernanda López", "1984-02-29", ""]
)
def test_seal_then_open_gives_the_value_back(value: str) -> None:
    cipher = FieldCipher(SECRET)
    sealed = cipher.seal(value)
    assert sealed is not None
    if value:
        assert value not in sealed
    # Another cipher built from the same secret (another process) opens it too.
    assert FieldCipher(SECRET).open(sealed) == value


def test_none_stays_none() -> None:
    cipher = FieldCipher(SECRET)
    assert cipher.seal(None) is None
    assert cipher.open(None) is None
    assert cipher.lookup_key(None) is None


def test_two_seals_of_the_same_value_differ() -> None:
    cipher = FieldCipher(SECRET)
    first, second = cipher.seal("+12025550143"), cipher.seal("+12025550143")
    assert first != second
    assert cipher.open(first) == cipher.open(second) == "+12025550143"


def _flip_byte(index: int) -> Callable[[str], str]:
    """Alter one byte of the sealed body: nonce (0-11), ciphertext, or tag (last 16)."""

    def tamper(token: str) -> str:
        version, _, body = token.partition(":")
        raw = bytearray(base64.urlsafe_b64decode(body))
        raw[index] ^= 0x01
        return f"{version}:{base64.urlsafe_b64encode(bytes(raw)).decode()}"

    return tamper


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(_flip_byte(0), id="nonce byte flipped"),
        pytest.param(_flip_byte(12), id="ciphertext byte flipped"),
        pytest.param(_flip_byte(-1), id="tag byte flipped"),
        pytest.param(lambda t: "v2:" + t.partition(":")[2], id="version changed"),
        pytest.param(lambda t: t.partition(":")[2], id="version removed"),
        pytest.param(lambda t: t[:-4], id="last four characters cut"),
        pytest.param(lambda t: t[:-1], id="last character cut"),
        pytest.param(lambda t: t[:20], id="cut to twenty characters"),
        pytest.param(lambda t: "v1:", id="body emptied"),
    ],
)
def test_a_tampered_token_raises_decryption_failed(tamper: Callable[[str], str]) -> None:
    cipher = FieldCipher(SECRET)
    sealed = cipher.seal("+12025550143")
    assert sealed is not None
    tampered = tamper(sealed)
    assert tampered != sealed
    with pytest.raises(DecryptionFailed):
        cipher.open(tampered)


def test_another_secret_cannot_open_a_sealed_value() -> None:
    sealed = FieldCipher(SECRET).seal("+12025550143")
    with pytest.raises(DecryptionFailed, match="does not open with this secret key"):
        FieldCipher(OTHER_SECRET).open(sealed)


def test_lookup_key_is_stable_and_depends_on_the_secret_and_the_value() -> None:
    key = FieldCipher(SECRET).lookup_key("+12025550143")
    assert key is not None
    assert len(key) == 40
    assert all(c in "0123456789abcdef" for c in key)
    assert "2025550143" not in key
    # The same secret gives the same key in another process; another secret does not.
    assert FieldCipher(SECRET).lookup_key("+12025550143") == key
    assert FieldCipher(OTHER_SECRET).lookup_key("+12025550143") != key
    assert FieldCipher(SECRET).lookup_key("+12025550144") != key


# --- Settings --------------------------------------------------------------------------------


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No FRONTDESK_* settings in the environment and no frontdesk.toml in the working
    directory, whatever the shell running the tests has."""
    for name in Settings.model_fields:
        monkeypatch.delenv(f"FRONTDESK_{name.upper()}", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    "placeholder", ["changeme", "CHANGEME", "change-me", "password", " secret ", "xxx", ""]
)
@pytest.mark.usefixtures("clean_environment")
def test_a_placeholder_secret_is_refused_outside_demo_mode(placeholder: str) -> None:
    with pytest.raises(ValidationError, match="secret_key is a placeholder"):
        Settings(secret_key=placeholder)


@pytest.mark.usefixtures("clean_environment")
def test_a_placeholder_secret_is_allowed_in_demo_mode() -> None:
    settings = Settings(secret_key="changeme", demo=True)
    assert settings.secret_key == "changeme"
    assert settings.demo is True


@pytest.mark.usefixtures("clean_environment")
def test_a_short_secret_is_refused_and_32_characters_are_enough() -> None:
    with pytest.raises(ValidationError, match="at least 32 characters"):
        Settings(secret_key="k7#Qm2!vR9@pL4$w" + "Z" * 15)  # 31 characters
    assert Settings(secret_key="k7#Qm2!vR9@pL4$w" + "Z" * 16).secret_key is not None


@pytest.mark.usefixtures("clean_environment")
def test_no_secret_at_all_is_accepted_by_settings() -> None:
    # Settings leave it unset; resolve_secret decides (key file on SQLite, error on PostgreSQL).
    assert Settings().secret_key is None


def test_database_url_is_read_from_the_environment(
    clean_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert Settings().database_url == "sqlite:///./frontdesk.db"
    monkeypatch.setenv("FRONTDESK_DATABASE_URL", "sqlite:////srv/frontdesk/practice.db")
    assert Settings().database_url == "sqlite:////srv/frontdesk/practice.db"


def test_frontdesk_toml_in_the_working_directory_is_read(clean_environment: Path) -> None:
    (clean_environment / "frontdesk.toml").write_text(
        'database_url = "sqlite:///from-file.db"\nport = 9001\ndefault_timezone = "Europe/London"\n'
    )
    settings = Settings()
    assert settings.database_url == "sqlite:///from-file.db"
    assert settings.port == 9001
    assert settings.default_timezone == "Europe/London"


def test_the_environment_beats_frontdesk_toml(
    clean_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (clean_environment / "frontdesk.toml").write_text(
        'database_url = "sqlite:///from-file.db"\nport = 9001\n'
    )
    monkeypatch.setenv("FRONTDESK_DATABASE_URL", "sqlite:///from-env.db")
    settings = Settings()
    assert settings.database_url == "sqlite:///from-env.db"
    assert settings.port == 9001  # what the environment does not say still comes from the file


def test_a_placeholder_secret_in_frontdesk_toml_is_refused(clean_environment: Path) -> None:
    (clean_environment / "frontdesk.toml").write_text('secret_key = "changeme"\n')
    with pytest.raises(ValidationError, match="placeholder"):
        Settings()


@pytest.mark.parametrize(
    "url", ["mysql://user@localhost/frontdesk", "frontdesk.db", "oracle://db/x", "http://x"]
)
@pytest.mark.usefixtures("clean_environment")
def test_an_unknown_database_scheme_is_refused(url: str) -> None:
    with pytest.raises(ValidationError, match="must be a sqlite:/// or postgresql:// URL"):
        Settings(database_url=url)


@pytest.mark.parametrize(
    ("url", "sqlalchemy_url"),
    [
        ("sqlite:///./frontdesk.db", "sqlite:///./frontdesk.db"),
        ("postgresql://fd@db/frontdesk", "postgresql+psycopg://fd@db/frontdesk"),
        ("postgres://fd@db/frontdesk", "postgresql+psycopg://fd@db/frontdesk"),
        ("postgresql+psycopg://fd@db/frontdesk", "postgresql+psycopg://fd@db/frontdesk"),
    ],
)
@pytest.mark.usefixtures("clean_environment")
def test_known_database_schemes_are_accepted(url: str, sqlalchemy_url: str) -> None:
    assert Settings(database_url=url, secret_key=SECRET).sqlalchemy_url == sqlalchemy_url


# --- resolve_secret --------------------------------------------------------------------------


@pytest.mark.usefixtures("clean_environment")
def test_postgresql_without_a_secret_is_a_configuration_error() -> None:
    settings = Settings(database_url="postgresql://fd@db.example/frontdesk")
    with pytest.raises(ConfigurationError, match="FRONTDESK_SECRET_KEY must be set"):
        resolve_secret(settings)


@pytest.mark.usefixtures("clean_environment")
def test_a_configured_secret_is_used_as_it_is(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path}/fd.db", secret_key=SECRET)
    assert resolve_secret(settings) == SECRET
    assert not (tmp_path / SECRET_FILE_NAME).exists()


@pytest.mark.usefixtures("clean_environment")
def test_sqlite_without_a_secret_creates_a_private_key_file_beside_the_database(
    tmp_path: Path,
) -> None:
    database = tmp_path / "data" / "practice.db"
    settings = Settings(database_url=f"sqlite:///{database}")

    first = resolve_secret(settings)

    key_file = tmp_path / "data" / SECRET_FILE_NAME
    assert key_file.is_file()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_file.read_text().strip() == first
    assert len(first) >= 32
    # A second call (the next command, the server) reads the same key.
    assert resolve_secret(settings) == first
    assert resolve_secret(Settings(database_url=f"sqlite:///{database}")) == first


def test_a_relative_sqlite_url_puts_the_key_file_in_the_working_directory(
    clean_environment: Path,
) -> None:
    value = resolve_secret(Settings())  # sqlite:///./frontdesk.db
    assert (clean_environment / SECRET_FILE_NAME).read_text().strip() == value


@pytest.mark.usefixtures("clean_environment")
def test_an_in_memory_database_gets_a_fresh_secret_and_no_file(tmp_path: Path) -> None:
    settings = Settings(database_url="sqlite:///:memory:")
    first, second = resolve_secret(settings), resolve_secret(settings)
    assert len(first) >= 32
    assert first != second
    assert not (tmp_path / SECRET_FILE_NAME).exists()


@pytest.mark.usefixtures("clean_environment")
def test_an_empty_key_file_is_refused_not_used_as_the_secret(tmp_path: Path) -> None:
    # An empty key file (a crash between creating and writing it, a `touch`) must not become
    # an empty secret: Settings refuses "" as a placeholder, and so should the key file.
    (tmp_path / SECRET_FILE_NAME).write_text("\n")
    settings = Settings(database_url=f"sqlite:///{tmp_path}/fd.db")
    with pytest.raises(ConfigurationError):
        resolve_secret(settings)
