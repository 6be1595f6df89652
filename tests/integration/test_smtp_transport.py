"""The SMTP transport against a real aiosmtpd server: STARTTLS with a login, TLS from the first
byte (smtps), a refused login kept for later, and CAREPATH_SMTP_URL's forms."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from domain.errors import DeliveryFailed
from domain.mailer import SmtpTransport
from tests.mail_server import SmtpSink


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1: (certificate file, key file)."""
    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def server_tls(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


def client_tls(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certificate[0]))


def only(user: str, password: str) -> Any:
    def authenticator(
        server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            user.encode(),
            password.encode(),
        )
        return AuthResult(success=ok, handled=False)  # the server answers 235 or 535

    return authenticator


def letter() -> EmailMessage:
    message = EmailMessage()
    message["From"] = "carepath <no-reply@carepath.invalid>"
    message["To"] = "ana@example.org"
    message["Subject"] = "Test"
    message["Message-ID"] = f"<{uuid4()}@carepath.invalid>"
    message.set_content("Bonjour\n")
    return message


def test_starttls_and_a_login_deliver_the_message(certificate: tuple[Path, Path]) -> None:
    with SmtpSink(
        tls_context=server_tls(certificate),
        require_starttls=True,
        authenticator=only("carepath", "s3cret"),
        auth_require_tls=True,
    ) as sink:
        transport = SmtpTransport(
            "127.0.0.1", sink.port, starttls=True, username="carepath", password="s3cret",
            tls_context=client_tls(certificate),
        )  # fmt: skip
        sent = letter()
        transport.send(sent, uuid4())
        transport.close()
        assert [m["Message-ID"] for m in sink.messages] == [sent["Message-ID"]]


def test_a_server_requiring_starttls_refuses_a_client_without_it_until_configured(
    certificate: tuple[Path, Path],
) -> None:
    with SmtpSink(tls_context=server_tls(certificate), require_starttls=True) as sink:
        transport = SmtpTransport("127.0.0.1", sink.port)
        with pytest.raises(DeliveryFailed) as refused:
            transport.send(letter(), uuid4())
        # 530 at MAIL FROM: the configuration's fault, not the message's: kept for a retry.
        assert not refused.value.permanent
        assert "530" in str(refused.value)
        assert sink.messages == []


def test_a_refused_login_is_a_temporary_failure(certificate: tuple[Path, Path]) -> None:
    with SmtpSink(
        tls_context=server_tls(certificate),
        require_starttls=True,
        authenticator=only("carepath", "s3cret"),
        auth_require_tls=True,
    ) as sink:
        transport = SmtpTransport(
            "127.0.0.1", sink.port, starttls=True, username="carepath", password="wrong",
            tls_context=client_tls(certificate),
        )  # fmt: skip
        with pytest.raises(DeliveryFailed) as refused:
            transport.send(letter(), uuid4())
        # The fault is the configuration, not the message: it waits for the login to be fixed.
        assert not refused.value.permanent
        assert sink.messages == []


def test_smtps_speaks_tls_from_the_first_byte(certificate: tuple[Path, Path]) -> None:
    with SmtpSink(server_hostname="127.0.0.1", ssl_context=server_tls(certificate)) as sink:
        transport = SmtpTransport(
            "127.0.0.1", sink.port, implicit_tls=True, tls_context=client_tls(certificate)
        )
        transport.send(letter(), uuid4())
        transport.close()
        assert len(sink.messages) == 1


def test_a_mailbox_the_server_refuses_is_a_permanent_failure() -> None:
    with SmtpSink() as sink:
        sink.refused_recipients.add("ana@example.org")
        with pytest.raises(DeliveryFailed) as refused:
            SmtpTransport("127.0.0.1", sink.port).send(letter(), uuid4())
        assert refused.value.permanent
        assert "550" in str(refused.value)
        assert sink.messages == []


def test_an_unreachable_server_is_a_temporary_failure() -> None:
    with SmtpSink() as sink:
        port = sink.port
    with pytest.raises(DeliveryFailed) as lost:
        SmtpTransport("127.0.0.1", port, timeout=2).send(letter(), uuid4())
    assert not lost.value.permanent


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://mail.example.ca", ("mail.example.ca", 25, False, False, None, None)),
        (
            "smtp://carepath:p%40ss@mail.example.ca:587?starttls=1",
            ("mail.example.ca", 587, False, True, "carepath", "p@ss"),
        ),
        ("smtps://u:p@mail.example.ca", ("mail.example.ca", 465, True, False, "u", "p")),
    ],
)
def test_the_smtp_url_gives_host_port_tls_and_login(url: str, expected: tuple[Any, ...]) -> None:
    t = SmtpTransport.from_url(url)
    assert (t.host, t.port, t.implicit_tls, t.starttls, t.username, t.password) == expected


def test_an_smtp_url_of_another_scheme_is_refused() -> None:
    with pytest.raises(ValueError, match="smtp://"):
        SmtpTransport.from_url("http://mail.example.ca")
