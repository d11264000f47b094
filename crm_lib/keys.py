"""The secret key of pseudonymous ids, and the keyed pseudonyms themselves.

A pseudonym is ``HMAC-SHA256(key, customer_id)`` cut to ``length`` hex characters
(RFC 2104). Without the key, nobody can hash the known id space (``00001`` to ``23570``)
and match the pseudonyms of a report; with it, the same customer gets the same
pseudonym in every run. There is no public default key.

The key comes, in this order, from

1. the environment variable ``CRM_PSEUDONYM_KEY`` (any text of at least 16 characters);
2. a key file, ``CRM_PSEUDONYM_KEY_FILE`` or ``~/.config/crm-workbench/pseudonym.key``,
   created on first use with 32 random bytes and owner-only permissions (0600); its
   location is logged once, the key never.

The key file must lie outside the project and outside every report folder, so that it
is never committed or handed to reviewers.

Collisions: with ``n`` customers and ``b``-bit pseudonyms the expected number of
colliding pairs is about ``n**2 / 2**(b+1)`` (birthday bound). The default 16 hex
characters (64 bits) give 4e-7 pairs at 4 million customers; the old 10 characters
(40 bits) gave about 7.
"""
from __future__ import annotations

import hmac
import logging
import os
import secrets
from itertools import repeat
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from crm_lib.exceptions import ParamsError

logger = logging.getLogger(__name__)

KEY_ENV = "CRM_PSEUDONYM_KEY"
KEY_FILE_ENV = "CRM_PSEUDONYM_KEY_FILE"
DEFAULT_KEY_FILE = Path("~/.config/crm-workbench/pseudonym.key")
#: 16 hex characters = 64 bits: collisions stay negligible at millions of customers.
DEFAULT_LENGTH = 16
MIN_LENGTH = 16
MIN_KEY_CHARS = 16

HOW_TO_SET = (
    f"set {KEY_ENV} to a secret of at least {MIN_KEY_CHARS} characters "
    f"(e.g. `export {KEY_ENV}=$(python -c 'import secrets; print(secrets.token_hex(32))')`), "
    f"or point {KEY_FILE_ENV} at a writable file outside the project"
)

_announced: set[str] = set()


class PseudonymKeyError(ParamsError):
    """No usable pseudonym key (not set, unreadable, too short or inside the project)."""


def key_file_path() -> Path:
    """Where the key file is read from (``CRM_PSEUDONYM_KEY_FILE`` or the default)."""
    return Path(os.environ.get(KEY_FILE_ENV) or DEFAULT_KEY_FILE).expanduser().resolve()


def _inside(path: Path, folders: Iterable[Path]) -> Path | None:
    for folder in folders:
        folder = Path(folder).resolve()
        if path == folder or folder in path.parents:
            return folder
    return None


def _create_key_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # O_EXCL: two runs starting at once cannot both write a key; the loser reads the winner's.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(32) + "\n")
    logger.warning("created the pseudonym key file %s (owner-only); keep it to get the same pseudonyms next run", path)


def load_key(*, create: bool = True, forbidden: Iterable[Path] = ()) -> bytes:
    """The pseudonym key from the environment or the key file.

    Parameters
    ----------
    create : bool
        Create the key file with a random key when neither the variable nor the file exists.
    forbidden : iterable of Path
        Folders the key file must not be in (the project, the report folder).

    Returns
    -------
    bytes

    Raises
    ------
    PseudonymKeyError
        No key and none can be created, a key shorter than 16 characters, or a key file
        inside a forbidden folder. The message says how to set one and never shows the key.
    """
    value = os.environ.get(KEY_ENV)
    if value:
        if len(value.strip()) < MIN_KEY_CHARS:
            raise PseudonymKeyError(
                f"{KEY_ENV} is set but has {len(value.strip())} characters; a guessable key makes pseudonyms "
                f"reversible. {HOW_TO_SET[0].upper() + HOW_TO_SET[1:]}."
            )
        return value.strip().encode()
    path = key_file_path()
    inside = _inside(path, forbidden)
    if inside is not None:
        raise PseudonymKeyError(
            f"pseudonym key file {path} is inside {inside}; it would be committed or published with the reports. "
            f"Move it out and {HOW_TO_SET}."
        )
    if not path.exists():
        if not create:
            raise PseudonymKeyError(f"no pseudonym key: {path} does not exist and {KEY_ENV} is not set; {HOW_TO_SET}.")
        try:
            _create_key_file(path)
        except FileExistsError:
            pass
        except OSError as error:
            raise PseudonymKeyError(
                f"no pseudonym key: {KEY_ENV} is not set and the key file {path} cannot be created "
                f"({error.strerror}); {HOW_TO_SET}."
            ) from None
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as error:
        raise PseudonymKeyError(f"pseudonym key file {path} cannot be read ({error.strerror}); {HOW_TO_SET}.") from None
    if len(text) < MIN_KEY_CHARS:
        raise PseudonymKeyError(f"pseudonym key file {path} holds fewer than {MIN_KEY_CHARS} characters; {HOW_TO_SET}.")
    if str(path) not in _announced:
        _announced.add(str(path))
        logger.info("pseudonym key read from %s", path)
    return text.encode()


def keyed_pseudonyms(customer_ids: Iterable[Any], key: bytes | None = None, *, length: int = DEFAULT_LENGTH) -> pd.Series:
    """Pseudonymous ids: the first ``length`` hex characters of HMAC-SHA256(key, id).

    Parameters
    ----------
    customer_ids : iterable
        Real ids; numbers and text give the same pseudonym (``1`` and ``"1"``).
    key : bytes, optional
        The secret; :func:`load_key` when omitted.
    length : int
        Hex characters kept, 16 to 64 (at least 64 bits against collisions).

    Returns
    -------
    Series of str
        One pseudonym per id, in the order given.

    Raises
    ------
    PseudonymKeyError
        No key available (see :func:`load_key`).
    ParamsError
        A length outside 16..64.

    Examples
    --------
    >>> keyed_pseudonyms(["00001"], key=b"0123456789abcdef").str.len().tolist()
    [16]
    """
    digests = pseudonym_digests(customer_ids, key, length=length)
    return pd.Series(hex_text(digests, int(length)), dtype="str")


def pseudonym_digests(customer_ids: Iterable[Any], key: bytes | None = None, *,
                      length: int = DEFAULT_LENGTH) -> np.ndarray:
    """The HMAC bytes whose hex, cut to ``length`` characters, are the ids' pseudonyms (one row per id).

    Arguments and errors as :func:`keyed_pseudonyms` (no key; a length outside 16..64).
    """
    if not MIN_LENGTH <= int(length) <= 64:
        raise ParamsError(f"pseudonym length={length} is outside {MIN_LENGTH}..64 hex characters; use 16 or more.")
    secret = load_key() if key is None else key
    n_bytes = (int(length) + 1) // 2
    if not isinstance(customer_ids, (pd.Index, pd.Series)):
        customer_ids = text_ids(customer_ids)
    # In chunks: the text and bytes objects of a few hundred thousand ids at a time, not of millions.
    chunks = [keyed_digests(text_ids(customer_ids[start:start + DIGEST_CHUNK]), secret, n_bytes=n_bytes)
              for start in range(0, len(customer_ids), DIGEST_CHUNK)]
    return np.concatenate(chunks) if chunks else np.empty((0, n_bytes), dtype=np.uint8)


#: Ids hashed at once by :func:`pseudonym_digests`.
DIGEST_CHUNK = 250_000


def keyed_digests(ids: list[str], key: bytes, *, n_bytes: int = 32) -> np.ndarray:
    """The first ``n_bytes`` bytes of HMAC-SHA256(key, id) of each id, one row each (uint8).

    >>> keyed_digests(["a"], b"k", n_bytes=4).tobytes() == hmac.digest(b"k", b"a", "sha256")[:4]
    True
    """
    joined = "\x00".join(ids)
    if len(ids) < 2 or joined.count("\x00") != len(ids) - 1:  # an id holding a NUL: encode one by one
        encoded = [c.encode() for c in ids]
    else:  # one encode and one split in C instead of an encode per id
        encoded = joined.encode().split(b"\x00")
    # hmac.digest: the one-shot HMAC in C, the same bytes as hmac.new(...).digest(); mapped in C.
    raw = b"".join(map(hmac.digest, repeat(key), encoded, repeat("sha256")))
    return np.frombuffer(raw, dtype=np.uint8).reshape(len(ids), 32)[:, :n_bytes].copy()


def hex_text(digests: np.ndarray, length: int) -> pd.arrays.ArrowStringArray:
    """Rows of bytes as lowercase hex text cut to ``length`` characters (``bytes.hex()[:length]``)."""
    import pyarrow as pa

    nibbles = np.empty((len(digests), 2 * digests.shape[1]), dtype=np.uint8)
    nibbles[:, 0::2] = digests >> 4
    nibbles[:, 1::2] = digests & 15
    chars = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)[nibbles[:, :length]]
    offsets = np.arange(0, len(digests) * length + 1, length, dtype=np.int64)
    text = pa.LargeStringArray.from_buffers(len(digests), pa.py_buffer(offsets), pa.py_buffer(chars.tobytes()))
    return pd.array(text.cast(pa.string()) if len(offsets) and offsets[-1] < 2**31 else text, dtype="str")


def text_ids(customer_ids: Iterable[Any]) -> list[str]:
    """Every id as text: ``str(id)``, or one ``tolist()`` for a pandas Index or Series of text.

    >>> text_ids([1, "02"]), text_ids(pd.Index(["a", "b"], dtype="str"))
    (['1', '02'], ['a', 'b'])
    """
    if isinstance(customer_ids, (pd.Index, pd.Series)) and pd.api.types.is_string_dtype(customer_ids.dtype) \
            and customer_ids.dtype != object and not customer_ids.hasnans:
        return customer_ids.tolist()
    return [str(c) for c in customer_ids]


def refuse_salt_knob(parameters: dict[str, Any], source: str) -> None:
    """Refuse a ``pseudonym_salt`` set in a params file: the secret key replaces it.

    Raises
    ------
    ParamsError
        When ``parameters`` sets ``pseudonym_salt``.
    """
    if "pseudonym_salt" in parameters:
        raise ParamsError(
            f"{source}: parameter 'pseudonym_salt' is replaced by the secret pseudonym key "
            f"(HMAC-SHA256); remove it from the params file and {HOW_TO_SET}."
        )
