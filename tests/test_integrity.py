from pathlib import Path

from access_audit.integrity import GENESIS, file_sha256, link_hash


def test_link_hash_depends_on_previous_and_payload() -> None:
    first = link_hash(GENESIS, b"a")
    assert link_hash(GENESIS, b"a") == first
    assert link_hash(GENESIS, b"b") != first
    assert link_hash(first, b"a") != first
    assert len(first) == 64


def test_file_sha256_matches_known_digest(tmp_path: Path) -> None:
    path = tmp_path / "x"
    path.write_bytes(b"abc")
    assert file_sha256(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
