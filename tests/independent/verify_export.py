"""Check a carepath audit export against published checkpoints, as an outsider would.

Written from the README alone ("## Audit": The export, The leaf, Checkpoints) and RFC 9162, with
the Python standard library only and nothing of carepath: every line's disclosed values must match
their commitments and its record must hash to its leaf; each log's leaves, in index order from 0,
must give the root hash of every checkpoint of that size. Checkpoint signatures are Ed25519, which
the standard library lacks: they are checked only with --verifier and the `cryptography` package.

    python -I tests/independent/verify_export.py EXPORT.jsonl CHECKPOINTS.txt [--verifier VKEY]

Exit status: 0 when everything holds, 1 when anything differs, 2 for bad arguments or files.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys


def canonical(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 2.1.1: the Merkle tree hash, split at the largest power of two below n."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


def line_problems(line: dict) -> list[str]:
    problems = []
    state = line["state"]
    for name, shown in line.get("disclosed", {}).items():
        salt = bytes.fromhex(shown["salt"])
        held = state.get(name, {}).get("_commitment_")
        if hashlib.sha256(salt + canonical(shown["value"])).hexdigest() != held:
            problems.append(f"{name} does not match its commitment")
    record = {
        "application": line["application"],
        "originator_id": line["originator_id"],
        "originator_version": line["originator_version"],
        "topic": line["topic"],
        "state": state,
    }
    if leaf_hash(canonical(record)).hex() != line["leaf_hash"]:
        problems.append("the record does not hash to its leaf")
    return problems


def read_checkpoints(text: str) -> list[tuple[str, str, int, bytes, list[str]]]:
    """(note text, origin, size, root, signature lines) of each note in the file."""
    notes, lines = [], []
    for raw in text.splitlines(keepends=True):
        if lines and lines[-1].startswith("\u2014 ") and not raw.startswith("\u2014 "):
            notes.append("".join(lines))
            lines = []
        if lines or raw.strip():
            lines.append(raw)
    if lines:
        notes.append("".join(lines))
    found = []
    for note in notes:
        body, _, signatures = note.partition("\n\n")
        origin, size, root = body.split("\n")[:3]
        found.append(
            (body + "\n", origin, int(size), base64.b64decode(root), signatures.split("\n"))
        )
    return found


def signature_ok(text: str, signatures: list[str], vkey: str) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    name, key_id, encoded = vkey.split("+", 2)
    public = base64.b64decode(encoded)[1:]
    for line in signatures:
        if line.startswith(f"\u2014 {name} "):
            raw = base64.b64decode(line.split(" ")[2])
            if raw[:4].hex() != key_id:
                continue
            try:
                Ed25519PublicKey.from_public_bytes(public).verify(raw[4:], text.encode())
            except InvalidSignature:
                return False
            return True
    return False


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export")
    parser.add_argument("checkpoints")
    parser.add_argument("--verifier")
    args = parser.parse_args(argv)
    try:
        with open(args.export, encoding="utf-8") as export:
            lines = [json.loads(text) for text in export if text.strip()]
        with open(args.checkpoints, encoding="utf-8") as published:
            checkpoints = read_checkpoints(published.read())
    except (OSError, ValueError) as bad:
        print(f"cannot read: {bad}", file=sys.stderr)
        return 2
    failures = 0
    leaves: dict[str, list[bytes]] = {}
    for line in lines:
        log = leaves.setdefault(line["application"], [])
        if line["index"] != len(log):
            print(f"{line['application']} {line['index']}: expected index {len(log)}")
            failures += 1
        for problem in line_problems(line):
            print(f"{line['application']} {line['index']}: {problem}")
            failures += 1
        log.append(bytes.fromhex(line["leaf_hash"]))
    checked = 0
    for text, origin, size, root, signatures in checkpoints:
        log = leaves.get(origin.rpartition("/")[2], [])
        if size > len(log):
            continue  # a checkpoint beyond this export's end
        if args.verifier and not signature_ok(text, signatures, args.verifier):
            print(f"{origin} {size}: the signature does not verify")
            failures += 1
        if mth(log[:size]) != root:
            print(f"{origin} {size}: the export does not give the checkpoint's root")
            failures += 1
        checked += 1
    print(f"{len(lines)} events, {checked} checkpoints checked: {failures} problems")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
