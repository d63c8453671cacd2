"""Private certificate authorities for TLS tests, made by `trustme`.

`make_pki(directory)` writes a root CA (`ca.pem`, what clients trust), and a server
certificate for 127.0.0.1 and localhost issued by an intermediate CA: `cert.pem` holds the
server certificate then the intermediate (the chain the daemon must send, since clients trust
only the root), `key.pem` its key.
"""

from __future__ import annotations

import hashlib
import ssl
from pathlib import Path

import attrs
import trustme


@attrs.frozen
class Pki:
    ca_file: Path
    cert_file: Path
    key_file: Path

    def leaf_sha256(self) -> str:
        pem = self.cert_file.read_text()
        first = pem[: pem.index(ssl.PEM_FOOTER) + len(ssl.PEM_FOOTER)]
        return hashlib.sha256(ssl.PEM_cert_to_DER_cert(first)).hexdigest()


def make_pki(directory: Path, *names: str) -> Pki:
    """A fresh CA and a chained server certificate for `names` (default 127.0.0.1, localhost)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    intermediate = ca.create_child_ca()
    server = intermediate.issue_cert(*(names or ("127.0.0.1", "localhost")))
    pki = Pki(directory / "ca.pem", directory / "cert.pem", directory / "key.pem")
    ca.cert_pem.write_to_path(str(pki.ca_file))
    pki.cert_file.write_bytes(b"".join(blob.bytes() for blob in server.cert_chain_pems))
    server.private_key_pem.write_to_path(str(pki.key_file))
    return pki


def install_files(source: Pki, target: Pki) -> None:
    """Overwrite `target`'s certificate and key files with `source`'s (a renewal in place)."""
    target.cert_file.write_bytes(source.cert_file.read_bytes())
    target.key_file.write_bytes(source.key_file.read_bytes())
