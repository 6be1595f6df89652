"""The clamd client against a real clamd, started here with a one-signature database.

No signatures are downloaded: the database is the EICAR test file's SHA-256 (an .hsb file made
with sigtool), so clamd starts in a fraction of a second. Without clamd installed (Debian's
clamav-daemon) the tests skip, except under CI=true, where they fail.
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pikepdf
import pytest

from domain.errors import ScannerUnavailable
from domain.scanning import ClamdScanner
from domain.storage import Verdict

pytestmark = pytest.mark.slow

# The industry-standard anti-virus test file (eicar.org), split so this file is not itself it.
EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR" + b"-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
# A file of several INSTREAM chunks, also in the database: found only if streamed whole.
LARGE = bytes(range(256)) * 1200


def _program(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def clamd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClamdScanner]:
    """A clamd on a free loopback port, knowing only the EICAR signature; stopped afterwards."""
    clamd_path, sigtool_path = _program("clamd"), _program("sigtool")
    if clamd_path is None or sigtool_path is None:
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail("CI=true and clamd is not installed (apt-get install clamav-daemon)")
        pytest.skip("clamd is not installed (apt-get install clamav-daemon)")
    home = tmp_path_factory.mktemp("clamd")
    database = home / "db"
    database.mkdir()
    (home / "eicar.com").write_bytes(EICAR)
    (home / "large.bin").write_bytes(LARGE)
    signatures = subprocess.run(
        [sigtool_path, "--sha256", "eicar.com", "large.bin"],
        cwd=home,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    (database / "test.hsb").write_text(signatures)
    port = free_port()
    (home / "clamd.conf").write_text(
        "Foreground yes\n"
        f"TCPSocket {port}\n"
        "TCPAddr 127.0.0.1\n"
        f"DatabaseDirectory {database}\n"
        f"TemporaryDirectory {home}\n"
    )
    log = (home / "clamd.log").open("wb")
    process = subprocess.Popen(
        [clamd_path, "--config-file", str(home / "clamd.conf")],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    scanner = ClamdScanner("127.0.0.1", port, timeout=5.0)
    try:
        _wait_for_pong(scanner, process, home / "clamd.log")
        yield scanner
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _wait_for_pong(scanner: ClamdScanner, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            scanner.ping()
        except ScannerUnavailable:
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"clamd did not answer PING:\n{log.read_text(errors='replace')}")
            time.sleep(0.05)
        else:
            return


def plain_pdf(path: Path) -> Path:
    pdf = pikepdf.new()
    pdf.add_blank_page()
    pdf.save(path)
    return path


def test_clamd_finds_the_eicar_test_file(clamd: ClamdScanner, tmp_path: Path) -> None:
    # given the EICAR test file
    path = tmp_path / "upload"
    path.write_bytes(EICAR)
    # when it is scanned, then clamd names its signature
    verdict = clamd.scan(path)
    assert verdict.clean is False
    assert verdict.signature == "eicar.com.UNOFFICIAL"  # clamd marks local signatures so


def test_clamd_passes_a_plain_pdf(clamd: ClamdScanner, tmp_path: Path) -> None:
    assert clamd.scan(plain_pdf(tmp_path / "upload")) == Verdict(clean=True)


def test_a_file_of_several_chunks_is_streamed_whole(clamd: ClamdScanner, tmp_path: Path) -> None:
    # given a 300 KB file whose SHA-256 is a signature, and the same file less its last byte
    whole, short = tmp_path / "whole", tmp_path / "short"
    whole.write_bytes(LARGE)
    short.write_bytes(LARGE[:-1])
    # when both are scanned, then only the whole one matches
    assert clamd.scan(whole) == Verdict(clean=False, signature="large.bin.UNOFFICIAL")
    assert clamd.scan(short) == Verdict(clean=True)


def test_a_scanner_at_a_closed_port_is_unavailable(tmp_path: Path) -> None:
    # given nothing listening on a port
    scanner = ClamdScanner("127.0.0.1", free_port(), timeout=2.0)
    path = tmp_path / "upload"
    path.write_bytes(EICAR)
    # when it is asked, then it is unavailable (the caller fails closed)
    with pytest.raises(ScannerUnavailable):
        scanner.scan(path)
    with pytest.raises(ScannerUnavailable):
        scanner.ping()


def test_a_server_that_is_not_clamd_is_unavailable(tmp_path: Path) -> None:
    # given a server that answers something other than a verdict, then hangs up
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        path = tmp_path / "upload"
        path.write_bytes(b"hello")
        scanner = ClamdScanner("127.0.0.1", port, timeout=2.0)

        def answer() -> None:
            connection, _ = server.accept()
            with connection:
                connection.recv(io.DEFAULT_BUFFER_SIZE)
                connection.sendall(b"stream: something went wrong ERROR\0")

        responder = threading.Thread(target=answer)
        responder.start()
        # when the scanner asks it, then there is no verdict
        with pytest.raises(ScannerUnavailable, match="ERROR"):
            scanner.scan(path)
        responder.join(timeout=5)


def test_from_url_reads_host_and_port() -> None:
    scanner = ClamdScanner.from_url("tcp://127.0.0.1:3310")
    assert (scanner.host, scanner.port) == ("127.0.0.1", 3310)
    with pytest.raises(ValueError, match="tcp://"):
        ClamdScanner.from_url("unix:///run/clamav/clamd.ctl")
