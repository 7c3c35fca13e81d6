"""Write the tabular example data (deterministic): a churn table and a house-price table, mixed types with gaps.

python examples/make_tabular_data.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent


def churn(rows: int = 600, seed: int = 0) -> pd.DataFrame:
    """Customers: numbers, string categories, booleans, a signup date, an id; churn depends on several of them."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "customer_id": [f"C{i:05d}" for i in range(rows)],
            "age": rng.integers(18, 80, rows),
            "monthly_fee": rng.normal(40, 12, rows).round(2),
            "plan": rng.choice(["basic", "pro", "team", "enterprise"], rows, p=[0.4, 0.3, 0.2, 0.1]),
            "region": rng.choice(["north", "south", "east", "west"], rows),
            "autopay": rng.choice([True, False], rows),
            "signup_date": (
                pd.Timestamp("2022-01-01") + pd.to_timedelta(rng.integers(0, 900, rows), unit="D")
            ).strftime("%Y-%m-%d"),
            "support_calls": rng.poisson(2, rows),
        }
    )
    frame.loc[rng.choice(rows, rows // 12, replace=False), "monthly_fee"] = np.nan
    frame.loc[rng.choice(rows, rows // 15, replace=False), "region"] = None
    risk = (
        0.6 * frame["support_calls"]
        - 1.2 * frame["autopay"]
        + (frame["plan"] == "basic") * 1.0
        - (frame["age"] - 45) / 30
    )
    frame["churned"] = np.where(risk + rng.normal(0, 0.8, rows) > 0.8, "yes", "no")
    return frame


def houses(rows: int = 600, seed: int = 1) -> pd.DataFrame:
    """Houses: price and rent (two targets) from size, rooms, neighbourhood, build year, sale date."""
    rng = np.random.default_rng(seed)
    area = rng.normal(110, 35, rows).clip(30, 300).round(1)
    hood = rng.choice(["centre", "suburb", "rural"], rows, p=[0.3, 0.5, 0.2])
    built = rng.integers(1950, 2023, rows)
    frame = pd.DataFrame(
        {
            "listing": [f"L{i:05d}" for i in range(rows)],
            "area_m2": area,
            "rooms": (area / 28 + rng.normal(0, 0.7, rows)).round().clip(1, 10).astype(int),
            "neighbourhood": hood,
            "year_built": built,
            "garden": rng.choice([True, False], rows),
            "sold_on": (pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 700, rows), unit="D")).strftime(
                "%Y-%m-%d"
            ),
        }
    )
    frame.loc[rng.choice(rows, rows // 10, replace=False), "year_built"] = np.nan
    factor = pd.Series(hood).map({"centre": 1.6, "suburb": 1.0, "rural": 0.7}).to_numpy()
    frame["price_k"] = (
        area * 3.1 * factor + (built - 1950) * 0.9 + frame["garden"] * 25 + rng.normal(0, 20, rows)
    ).round(1)
    frame["rent"] = (frame["price_k"] * 3.6 + rng.normal(0, 40, rows)).round(0)
    return frame


if __name__ == "__main__":
    for task, name, frame in (
        ("tabular_classification", "churn.csv", churn()),
        ("tabular_regression", "houses.csv", houses()),
    ):
        folder = HERE / task / "data"
        folder.mkdir(parents=True, exist_ok=True)
        frame.to_csv(folder / name, index=False)
        print(f"wrote {folder / name} ({len(frame)} rows)")
