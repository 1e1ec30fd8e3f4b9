"""Integer codes for strings, the way the ingestion compares them: by all their bytes.

pandas' factorize (and so groupby, duplicated) stops comparing strings at a NUL character, so
`"a\\0x"` and `"a"` would be one value; Arrow's dictionary encoding compares every byte.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


def string_codes(values: pd.Series) -> tuple[np.ndarray, pa.Array]:
    """(an int64 code per row, -1 where missing; the distinct values, in order of their codes)."""
    encoded = pc.dictionary_encode(pa.array(values, type=pa.string(), from_pandas=True))
    codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    return codes, encoded.dictionary


def pair_codes(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """One code per distinct (left, right) pair of codes (-1 stays a value of its own)."""
    # left * M + (right + 1), with 0 <= right + 1 < M, is one number per pair; factorize hashes.
    combined = left * (int(right.max(initial=-1)) + 2) + (right + 1)
    codes, _ = pd.factorize(combined)
    return codes.astype(np.int64)
