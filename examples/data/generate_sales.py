"""Generate ``sales.csv``: a year of made-up but plausible sales orders (deterministic).

About 500 orders with numeric and categorical columns, a few missing values and a
few duplicated rows, so the demo pipeline's ``clean`` step has work to do. Run it
again and the file comes out byte for byte the same.

    python examples/data/generate_sales.py [OUTPUT.csv]
"""

from __future__ import annotations

import csv
import datetime
import io
import random
import sys
from pathlib import Path

SEED = 20240601
ORDERS = 490
DUPLICATES = 12
COLUMNS = [
    "order_id",
    "order_date",
    "region",
    "channel",
    "product",
    "units",
    "unit_price",
    "discount",
    "revenue",
    "customer_age",
    "satisfaction",
]
PRODUCTS = {"Widget": 12.5, "Gadget": 24.0, "Gizmo": 39.9, "Sprocket": 7.25, "Doohickey": 64.0}
REGIONS = {"North": 1.0, "South": 0.85, "East": 1.1, "West": 1.2}
CHANNELS = {"Online": 0.55, "Retail": 0.3, "Partner": 0.15}


def generate() -> str:
    """The CSV text (header first, ``\\n`` line endings)."""
    rng = random.Random(SEED)
    start = datetime.date(2024, 1, 1)
    rows: list[list[object]] = []
    for number in range(ORDERS):
        product = rng.choice(list(PRODUCTS))
        region = rng.choices(list(REGIONS), weights=[3, 2, 3, 4])[0]
        channel = rng.choices(list(CHANNELS), weights=list(CHANNELS.values()))[0]
        day = start + datetime.timedelta(days=int(rng.triangular(0, 365, 300)))
        units = max(1, int(rng.gammavariate(2.0, 4.0) * REGIONS[region]))
        price = round(PRODUCTS[product] * rng.uniform(0.9, 1.1), 2)
        discount: float | None = round(min(0.35, rng.expovariate(12.0)), 3)
        if channel == "Partner":
            discount = round(min(0.4, (discount or 0.0) + 0.1), 3)
        revenue = round(units * price * (1 - (discount or 0.0)), 2)
        age: int | None = int(min(80, max(18, rng.gauss(41, 12))))
        base = 3.4 + 0.8 * (discount or 0.0) * 5 - 0.004 * units + rng.gauss(0, 0.6)
        satisfaction: float | None = round(min(5.0, max(1.0, base)), 1)
        if rng.random() < 0.03:
            discount = None
        if rng.random() < 0.02:
            age = None
        if rng.random() < 0.02:
            satisfaction = None
        rows.append(
            [
                10001 + number,
                day.isoformat(),
                region,
                channel,
                product,
                units,
                price,
                discount,
                revenue,
                age,
                satisfaction,
            ]
        )
    for index in sorted(rng.sample(range(ORDERS), DUPLICATES), reverse=True):
        rows.insert(index + 1, list(rows[index]))  # the same order entered twice
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows([["" if v is None else v for v in row] for row in rows])
    return out.getvalue()


def main() -> None:
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("sales.csv")
    target.write_text(generate(), encoding="utf-8")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
