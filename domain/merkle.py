"""Merkle trees over an event log, as Certificate Transparency defines them (RFC 6962, RFC 9162
section 2.1): hashes, roots, inclusion and consistency proofs, and their verification.

    leaf hash = SHA-256(0x00 || entry)          node hash = SHA-256(0x01 || left || right)
    the root of n entries splits them at k, the largest power of two below n

An auditor holding a signed tree head (size, root) checks that one event is in the log
(`verify_inclusion`) and that a later tree head extends an earlier one without rewriting it
(`verify_consistency`), with nothing but these functions and SHA-256. `Frontier` keeps the
O(log n) subtree roots of a growing log, so the root after each append costs O(log n).

Written here rather than taken from a library: no maintained Python package implements
RFC 9162's proofs (the reference implementations are Go's transparency-dev/merkle and the
C2SP specs); the algorithms are RFC 9162's own pseudocode, and tests/unit/test_merkle.py checks
them against transparency-dev/merkle's test vectors.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

EMPTY_ROOT = hashlib.sha256(b"").digest()
HASH_SIZE = 32


class ProofError(ValueError):
    """A proof that does not verify, or does not fit the sizes it claims."""


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def root(leaves: Sequence[bytes]) -> bytes:
    """The Merkle Tree Hash of these leaf hashes (RFC 9162 2.1.1)."""
    if not leaves:
        return EMPTY_ROOT
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return node_hash(root(leaves[:k]), root(leaves[k:]))


def inclusion_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """The audit path of leaf `index` in the tree of these leaf hashes (RFC 9162 2.1.3.1)."""
    if not 0 <= index < len(leaves):
        raise ProofError(f"leaf {index} is not in a tree of {len(leaves)}")
    if len(leaves) == 1:
        return []
    k = _split(len(leaves))
    if index < k:
        return [*inclusion_proof(leaves[:k], index), root(leaves[k:])]
    return [*inclusion_proof(leaves[k:], index - k), root(leaves[:k])]


def consistency_proof(leaves: Sequence[bytes], size1: int) -> list[bytes]:
    """The proof that the tree of the first `size1` leaves is a prefix of the tree of all of
    them (RFC 9162 2.1.4.1)."""
    if not 0 <= size1 <= len(leaves):
        raise ProofError(f"size {size1} is not within a tree of {len(leaves)}")
    if size1 in (0, len(leaves)):
        return []
    return _subproof(leaves, size1, True)


def _subproof(leaves: Sequence[bytes], m: int, whole: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if whole else [root(leaves)]
    k = _split(n)
    if m <= k:
        return [*_subproof(leaves[:k], m, whole), root(leaves[k:])]
    return [*_subproof(leaves[k:], m - k, False), root(leaves[:k])]


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], expected_root: bytes
) -> None:
    """Raise ProofError unless `proof` shows leaf hash `leaf` at `index` in the tree of `size`
    whose root is `expected_root` (RFC 9162 2.1.3.2)."""
    if not 0 <= index < size:
        raise ProofError(f"leaf {index} is not in a tree of {size}")
    if len(leaf) != HASH_SIZE or any(len(p) != HASH_SIZE for p in proof):
        raise ProofError(f"a leaf hash and each proof hash have {HASH_SIZE} bytes")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError("the proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("the proof is shorter than the tree is deep")
    if r != expected_root:
        raise ProofError("the proof leads to another root")


def verify_consistency(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]
) -> None:
    """Raise ProofError unless `proof` shows the tree (size1, root1) is a prefix of the tree
    (size2, root2) (RFC 9162 2.1.4.2)."""
    if not 0 <= size1 <= size2:
        raise ProofError(f"a tree of {size1} cannot precede one of {size2}")
    if size1 == size2:
        if proof:
            raise ProofError("trees of the same size need an empty proof")
        if root1 != root2:
            raise ProofError("trees of the same size have different roots")
        if size1 == 0 and root1 != EMPTY_ROOT:
            raise ProofError("the empty tree's root is not SHA-256 of nothing")
        return
    if size1 == 0:  # as transparency-dev/merkle: an empty tree precedes any, which proves nothing
        raise ProofError("there is no consistency proof from an empty tree")
    if any(len(p) != HASH_SIZE for p in proof):
        raise ProofError(f"each proof hash has {HASH_SIZE} bytes")
    if not proof:
        raise ProofError("the proof is empty")
    path = list(proof)
    if size1 & (size1 - 1) == 0:  # a power of two: the first tree is a subtree of the second
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("the proof is longer than the trees are deep")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("the proof is shorter than the trees are deep")
    if fr != root1:
        raise ProofError("the proof does not lead to the first root")
    if sr != root2:
        raise ProofError("the proof does not lead to the second root")


class Frontier:
    """The roots of the perfect subtrees of a growing log (a compact range from 0): append a
    leaf hash in O(log n) amortised, read the root in O(log n). What a projection keeps."""

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        if len(hashes) != bin(size).count("1"):
            raise ProofError(f"a tree of {size} has {bin(size).count('1')} subtree roots")
        self.size = size
        self.hashes = list(hashes)  # largest subtree first, as size's bits from the top

    def append(self, leaf: bytes) -> None:
        node, size = leaf, self.size
        while size & 1:
            node = node_hash(self.hashes.pop(), node)
            size >>= 1
        self.hashes.append(node)
        self.size += 1

    def root(self) -> bytes:
        if not self.hashes:
            return EMPTY_ROOT
        node = self.hashes[-1]
        for left in reversed(self.hashes[:-1]):
            node = node_hash(left, node)
        return node
