"""Helpers of the security tests: certificates made with Debian's ``openssl`` for each test.

``make_pki(dir)`` writes a CA, a broker certificate for 127.0.0.1/localhost signed by it,
and client certificates (``pki.client("writer")``), all PEM; nothing is checked in.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

_OPENSSL_TIMEOUT_S = 60

# the raw-socket client of the broker tests (``broker_wire``) lives there
sys.path.insert(0, str(Path(__file__).parent.parent / "broker"))
from broker_wire import WireClient  # noqa: E402

__all__ = ["Pki", "WireClient", "make_pki"]


def _openssl(*args: str, cwd: Path) -> None:
    binary = shutil.which("openssl")
    if binary is None:
        pytest.fail("openssl is not installed (scripts/test installs Debian's openssl)")
    result = subprocess.run(
        [binary, *args], cwd=cwd, capture_output=True, timeout=_OPENSSL_TIMEOUT_S
    )
    assert result.returncode == 0, f"openssl {args[0]} failed:\n{result.stderr.decode()}"


@dataclass(frozen=True)
class Pki:
    directory: Path
    ca_cert: Path
    ca_key: Path
    broker_cert: Path
    broker_key: Path

    def client(self, common_name: str, organization: str = "acme") -> tuple[Path, Path]:
        """(cert, key) of a client certificate for ``CN=common_name,O=organization``."""
        key = self.directory / f"{common_name}.key"
        csr = self.directory / f"{common_name}.csr"
        cert = self.directory / f"{common_name}.pem"
        _openssl(
            "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", key.name,
            "-subj", f"/O={organization}/CN={common_name}", "-out", csr.name,
            cwd=self.directory,
        )  # fmt: skip
        _openssl(
            "x509", "-req", "-in", csr.name, "-CA", self.ca_cert.name, "-CAkey",
            self.ca_key.name, "-CAcreateserial", "-days", "2", "-out", cert.name,
            cwd=self.directory,
        )  # fmt: skip
        return cert, key


def make_pki(directory: Path) -> Pki:
    directory.mkdir(parents=True, exist_ok=True)
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
        "-days", "2", "-subj", "/CN=streamsource test CA",
        cwd=directory,
    )  # fmt: skip
    _openssl(
        "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", "broker.key",
        "-subj", "/CN=localhost", "-out", "broker.csr",
        cwd=directory,
    )  # fmt: skip
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl(
        "x509", "-req", "-in", "broker.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "broker.pem",
        cwd=directory,
    )  # fmt: skip
    return Pki(
        directory,
        directory / "ca.pem",
        directory / "ca.key",
        directory / "broker.pem",
        directory / "broker.key",
    )
