"""Bulk pseudonyms (HMACs mapped in C, hex by NumPy, collisions checked on 64-bit integers)
equal the one-id-at-a-time definition ``hmac.new(key, id, sha256).hexdigest()[:length]``."""
from __future__ import annotations

import hashlib
import hmac

import numpy as np
import pandas as pd
import pytest

from crm_lib import keys
from crm_lib.exceptions import ParamsError
from crm_lib.keys import keyed_pseudonyms
from crm_lib.privacy import pseudonymize

from conftest import TEST_PSEUDONYM_KEY

ODD_IDS = ["", "0001", "1", "é漢字🙂", "a,b", 'q"', "nul\x00inside", " ", "NaN", "None"]


def _reference(ids, length=16, key=TEST_PSEUDONYM_KEY.encode()):
    return [hmac.new(key, str(i).encode(), hashlib.sha256).hexdigest()[:length] for i in ids]


@pytest.mark.parametrize("length", [16, 17, 33, 64])
def test_bulk_pseudonyms_equal_hmac_hexdigest(length, monkeypatch):
    monkeypatch.setattr(keys, "DIGEST_CHUNK", 300)  # several chunks, the NUL id in one of them
    ids = ODD_IDS + [f"C{i:07d}" for i in range(2_000)]
    assert keyed_pseudonyms(ids, length=length).tolist() == _reference(ids, length)
    assert pseudonymize(pd.Index(ids, dtype="str"), length=length).tolist() == _reference(ids, length)
    assert keyed_pseudonyms(ids[2:3]).tolist() == _reference(ids[2:3])  # a single id (no bulk encode)


def test_pseudonymize_keeps_the_ids_as_index():
    ids = pd.Index(["b", "a", "é"], dtype="str", name="whatever")
    result = pseudonymize(ids)
    assert result.index.tolist() == ["b", "a", "é"] and result.index.name == "customer_id"
    assert pseudonymize([3, 1]).index.tolist() == ["3", "1"] and pseudonymize([]).empty


def test_colliding_pseudonyms_are_refused_repeated_ids_are_not(monkeypatch):
    real = keys.keyed_digests

    def colliding(ids, key, *, n_bytes=32):
        digests = real(ids, key, n_bytes=n_bytes).copy()
        digests[1] = digests[0]  # two customers, one pseudonym
        return digests

    monkeypatch.setattr(keys, "keyed_digests", colliding)
    with pytest.raises(ParamsError, match="1 pseudonymous ids collide"):
        pseudonymize(["x", "y", "z"])
    assert pseudonymize(["x", "x", "z"]).tolist() == _reference(["x", "x", "z"])  # the same id twice is fine


def test_first_64_bits_decide_whether_to_look_for_collisions():
    from crm_lib.privacy import _may_collide

    rows = np.zeros((3, 8), dtype=np.uint8)
    rows[:, 7] = [1, 2, 3]
    assert not _may_collide(rows)
    rows[2, 7] = 1
    assert _may_collide(rows)
