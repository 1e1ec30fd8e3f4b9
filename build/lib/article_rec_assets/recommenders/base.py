"""What a recommender is: fitted on the training clicks before t0, it scores candidate articles
for source articles.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from article_rec_assets.recommenders.click_log import TrainingClicks


class Recommender:
    """fit(train, t0) on a window's clicks, then recommend(source codes, k) -> (n, k) article codes,
    best first, NO_ARTICLE for empty slots, never the source, only catalogue articles."""

    name = "recommender"

    def fit(self, train: TrainingClicks, t0: pd.Timestamp) -> None:
        raise NotImplementedError

    def recommend(self, source_ids: np.ndarray, k: int) -> np.ndarray:
        raise NotImplementedError
