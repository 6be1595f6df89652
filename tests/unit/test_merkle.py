"""domain/merkle.py against RFC 6962's reference data and transparency-dev/merkle's proof test
vectors (tests/fixtures/rfc6962_proofs.json, Apache-2.0, Copyright Google LLC: every inclusion
and consistency case, the valid ones and the tampered ones that must be refused)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.merkle import (
    EMPTY_ROOT,
    Frontier,
    ProofError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root,
    verify_consistency,
    verify_inclusion,
)

VECTORS = json.loads((Path(__file__).parents[1] / "fixtures" / "rfc6962_proofs.json").read_text())
# transparency-dev/merkle testonly/constants.go: the leaf inputs and the roots of sizes 0..8
LEAF_INPUTS = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
ROOTS = [
    EMPTY_ROOT.hex(),
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
LEAVES = [leaf_hash(entry) for entry in LEAF_INPUTS]


def b64(value: str | None) -> bytes:
    return base64.b64decode(value or "")


def test_the_empty_root_is_sha256_of_nothing():
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


@pytest.mark.parametrize("size", range(9))
def test_roots_of_the_reference_trees(size):
    assert root(LEAVES[:size]).hex() == ROOTS[size]
    frontier = Frontier()
    for leaf in LEAVES[:size]:
        frontier.append(leaf)
    assert frontier.root().hex() == ROOTS[size]
    assert Frontier(frontier.size, frontier.hashes).root() == frontier.root()


@pytest.mark.parametrize("case", VECTORS["inclusion"], ids=lambda c: c["file"][9:])
def test_inclusion_vectors(case):
    proof = [b64(p) for p in case["proof"] or []]
    verify = lambda: verify_inclusion(  # noqa: E731
        case["leafIdx"], case["treeSize"], b64(case["leafHash"]), proof, b64(case["root"])
    )
    if case["wantErr"]:
        with pytest.raises(ProofError):
            verify()
    else:
        verify()


@pytest.mark.parametrize("case", VECTORS["consistency"], ids=lambda c: c["file"][9:])
def test_consistency_vectors(case):
    proof = [b64(p) for p in case["proof"] or []]
    verify = lambda: verify_consistency(  # noqa: E731
        case["size1"], case["size2"], b64(case["root1"]), b64(case["root2"]), proof
    )
    if case["wantErr"]:
        with pytest.raises(ProofError):
            verify()
    else:
        verify()


def test_the_vectors_hold_both_valid_and_tampered_cases():
    for kind in ("inclusion", "consistency"):
        wanted = {c["wantErr"] for c in VECTORS[kind]}
        assert wanted == {True, False}, kind


@given(st.lists(st.binary(max_size=8), min_size=1, max_size=40), st.data())
def test_every_proof_made_verifies_and_a_changed_leaf_is_caught(entries, data):
    leaves = [leaf_hash(e) for e in entries]
    size = len(leaves)
    index = data.draw(st.integers(0, size - 1))
    size1 = data.draw(st.integers(1, size))
    full = root(leaves)
    verify_inclusion(index, size, leaves[index], inclusion_proof(leaves, index), full)
    verify_consistency(size1, size, root(leaves[:size1]), full, consistency_proof(leaves, size1))
    frontier = Frontier()
    for leaf in leaves:
        frontier.append(leaf)
    assert frontier.root() == full
    # an altered entry: its inclusion fails, and so does consistency with the honest tree
    changed = list(leaves)
    changed[index] = leaf_hash(entries[index] + b"!")
    with pytest.raises(ProofError):
        verify_inclusion(index, size, changed[index], inclusion_proof(leaves, index), full)
    if 0 < index + 1 < size:
        with pytest.raises(ProofError):
            verify_consistency(
                index + 1,
                size,
                root(changed[: index + 1]),
                full,
                consistency_proof(leaves, index + 1),
            )


def test_a_frontier_with_the_wrong_number_of_subtrees_is_refused():
    with pytest.raises(ProofError, match="a tree of 3 has 2 subtree roots"):
        Frontier(3, [LEAVES[0]])
