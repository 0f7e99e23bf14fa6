"""Taxi-like trips for the NYC-taxi recipe (the real TLC data is not shipped): fare from distance and time.

python tests/data/recipes/make_taxi_data.py tests/data/recipes/nyc-taxi/data/sample.parquet 6000
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd


def taxi_trips(rows: int, seed: int = 0) -> pd.DataFrame:
    """``rows`` trips with the columns of the TLC yellow-taxi sample MLflow's example used."""
    rng = np.random.default_rng(seed)
    pickup = pd.Timestamp("2016-02-01") + pd.to_timedelta(rng.integers(0, 29 * 24 * 3600, rows), unit="s")
    distance = np.round(rng.gamma(2.0, 1.6, rows), 2) + 0.1
    speed = rng.normal(12, 3, rows).clip(4, 30)  # miles per hour
    minutes = distance / speed * 60 + rng.exponential(2, rows)
    dropoff = pickup + pd.to_timedelta(np.round(minutes * 60), unit="s")
    rush = np.isin(pickup.hour, [7, 8, 9, 16, 17, 18]).astype(float)
    fare = np.round(2.5 + 2.5 * distance + 0.4 * minutes + 1.0 * rush + rng.normal(0, 1.5, rows), 2).clip(2.5)
    return pd.DataFrame(
        {
            "tpep_pickup_datetime": pickup,
            "tpep_dropoff_datetime": dropoff,
            "trip_distance": distance,
            "pickup_zip": rng.integers(10001, 10300, rows).astype("int32"),
            "dropoff_zip": rng.integers(10001, 10300, rows).astype("int32"),
            "fare_amount": fare,
        }
    )


if __name__ == "__main__":
    target = Path(sys.argv[1])
    target.parent.mkdir(parents=True, exist_ok=True)
    taxi_trips(int(sys.argv[2]) if len(sys.argv) > 2 else 6000).to_parquet(target, index=False)
