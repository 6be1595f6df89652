"""Signed notes and checkpoints (domain/signed_note.py) against Go's golang.org/x/mod/sumdb/note
test vector (BSD-3-Clause, The Go Authors): the same key must give the same signature."""

from __future__ import annotations

import re

import pytest

from domain.merkle import leaf_hash, root
from domain.signed_note import Checkpoint, NoteError, Signer, Verifier, open_note

SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
SIGNED = (
    TEXT
    + "\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)


def test_the_go_vector_signs_and_verifies_byte_for_byte():
    signer = Signer.parse(SKEY)
    assert signer.encode() == SKEY
    assert signer.verifier.encode() == VKEY
    assert Verifier.parse(VKEY) == signer.verifier
    assert signer.sign(TEXT) == SIGNED
    assert open_note(SIGNED, Verifier.parse(VKEY)) == TEXT


@pytest.mark.parametrize(
    ("note", "said"),
    [
        (SIGNED.replace("answer", "Answer"), "does not verify"),
        (SIGNED.replace("— PeterNeumann", "— PaulNeumann"), "no signature by PeterNeumann"),
        (TEXT, "a signed note is its text"),
        (SIGNED.replace("— ", "-- "), "is not a signature line"),
        (SIGNED.replace("x08go", "!!!go"), "is not base64"),
    ],
)
def test_a_changed_note_is_refused_with_the_reason(note, said):
    with pytest.raises(NoteError, match=said):
        open_note(note, Verifier.parse(VKEY))


@pytest.mark.parametrize(
    ("vkey", "said"),
    [
        ("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "id does not match"),
        ("PeterNeumann+c74f20a3+AhpcwQcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "not an Ed25519"),
        ("PeterNeumann+c74f20a3", "is <name>+<key id>+<base64 key>"),
    ],
)
def test_a_malformed_verifier_key_is_refused(vkey, said):
    with pytest.raises(NoteError, match=re.escape(said)):
        Verifier.parse(vkey)


def test_a_checkpoint_round_trips_through_a_signed_note():
    signer = Signer.generate("carepath.example/registry")
    tree = root([leaf_hash(bytes([n])) for n in range(5)])
    checkpoint = Checkpoint("carepath.example/Registry", 5, tree)
    note = signer.sign(checkpoint.body())
    assert Checkpoint.parse(open_note(note, signer.verifier)) == checkpoint
    assert note.splitlines()[:3] == [
        "carepath.example/Registry",
        "5",
        checkpoint.body().split("\n")[2],
    ]
    other = Signer.generate("carepath.example/registry")
    with pytest.raises(NoteError):
        open_note(note, other.verifier)
    with pytest.raises(NoteError, match="leading zeros"):
        Checkpoint.parse(checkpoint.body().replace("\n5\n", "\n05\n"))
