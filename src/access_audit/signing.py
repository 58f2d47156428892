"""Ed25519 signatures over the store's head, so a rewrite of the whole chain needs the key too.

Optional (``pip install 'access-audit[sign]'``). With ``[store] signing_key`` set to a PEM private
key kept outside the home, each commit writes ``_head.sig`` into the new generation: a signature
over ``access-audit store head g000012:<head>``. ``verify --public-key`` checks the current
generation's signature with the matching public key, which auditors hold. Make a key pair with
``openssl genpkey -algorithm ed25519 -out signing.key`` and
``openssl pkey -in signing.key -pubout -out signing.pub``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from access_audit.errors import AccessAuditError
from access_audit.manifest import SIGNATURE_NAME, generation_name


def head_message(generation: int, head: str) -> bytes:
    """What is signed: the generation and its head, so a signature cannot be moved to another."""
    return f"access-audit store head {generation_name(generation)}:{head}\n".encode("ascii")


def write_signature(folder: Path, key_path: Path, generation: int, head: str) -> None:
    """Sign a staged generation's head into ``folder/_head.sig`` (hex), read-only."""
    _require_cryptography()
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    key = _load(key_path, load_pem_private_key, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise AccessAuditError(f"{key_path}: not an Ed25519 private key")
    path = folder / SIGNATURE_NAME
    path.write_text(key.sign(head_message(generation, head)).hex() + "\n", encoding="ascii")
    os.chmod(path, 0o400)


def signature_problem(
    folder: Path, public_key_path: Path, generation: int, head: str
) -> str | None:
    """None if ``folder``'s signature is the public key's over this head; else one line."""
    _require_cryptography()
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    key = _load(public_key_path, load_pem_public_key)
    if not isinstance(key, Ed25519PublicKey):
        raise AccessAuditError(f"{public_key_path}: not an Ed25519 public key")
    where = f"{folder.name}/{SIGNATURE_NAME}"
    try:
        signature = bytes.fromhex((folder / SIGNATURE_NAME).read_text(encoding="ascii").strip())
    except FileNotFoundError:
        return f"{where}: missing (the head is not signed)"
    except (ValueError, UnicodeDecodeError):
        return f"{where}: not a signature"
    try:
        key.verify(signature, head_message(generation, head))
    except InvalidSignature:
        return f"{where}: does not match the head and this public key (chain rewritten?)"
    return None


def _require_cryptography() -> None:
    try:
        import cryptography  # noqa: F401
    except ModuleNotFoundError:
        raise AccessAuditError(
            "signing needs the cryptography package: pip install 'access-audit[sign]'"
        ) from None


def _load(path: Path, loader: Any, **options: Any) -> Any:
    try:
        return loader(path.read_bytes(), **options)
    except OSError as exc:
        raise AccessAuditError(f"{path}: cannot read the key ({exc.strerror})") from None
    except (ValueError, TypeError):
        raise AccessAuditError(f"{path}: not a PEM key") from None
