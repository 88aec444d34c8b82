"""Field data for calibration: the visits and purchases a platform observes.

The picture: a platform's logs of one stream, one row per visit (who came
when, and when they left) and one row per purchase (which visit bought which
product when).  Nothing latent (segments, impulsiveness, interest) is needed.

A data folder holds two tables, each as ``NAME.csv`` or ``NAME.parquet``:

- ``visits``: ``visit_id, arrival_s, departure_s`` (a visit still going at the
  stream's end has ``departure_s`` equal to the stream's duration);
- ``purchases``: ``visit_id, product, time_s`` and, optionally, ``units`` and
  ``price_paid`` (read, checked to be numbers, not used by the likelihood).

:func:`read_field_data` refuses bad data with every problem at once, one line
per problem, each naming the file, the column, the row and value, and the rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fomolab.errors import DataError

__all__ = ["FieldData", "read_field_data", "field_data_from_tables", "VISIT_COLUMNS", "PURCHASE_COLUMNS"]

VISIT_COLUMNS = ("visit_id", "arrival_s", "departure_s")
PURCHASE_COLUMNS = ("visit_id", "product", "time_s")
OPTIONAL_PURCHASE_COLUMNS = ("units", "price_paid")
#: Most problems listed per rule and column (the rest are counted).
MAX_LISTED = 5


@dataclass(frozen=True)
class FieldData:
    """Observed visits and purchases of one stream, checked.

    Attributes
    ----------
    visit_id : ndarray
        Visit ids as strings, in the visits table's order.
    arrival_s, departure_s : ndarray
        Each visit's arrival and departure times (seconds of the stream).
    purchase_visit : ndarray
        Row of ``visit_id`` of each purchase.
    purchase_product : ndarray
        Product name of each purchase.
    purchase_time_s : ndarray
        Time of each purchase.
    """

    visit_id: np.ndarray
    arrival_s: np.ndarray
    departure_s: np.ndarray
    purchase_visit: np.ndarray
    purchase_product: np.ndarray
    purchase_time_s: np.ndarray
    source: str = "<data>"

    @property
    def n_visits(self) -> int:
        return len(self.arrival_s)

    @property
    def n_purchases(self) -> int:
        return len(self.purchase_time_s)

    def __repr__(self) -> str:
        return f"FieldData({self.source!r}, visits={self.n_visits}, purchases={self.n_purchases})"

    def purchase_matrix(self, products: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """``(bought, time)``: visits x products; time NaN where not bought."""
        n = self.n_visits
        bought = np.zeros((n, len(products)), bool)
        time = np.full((n, len(products)), np.nan)
        col = {p: j for j, p in enumerate(products)}
        j = np.array([col[p] for p in self.purchase_product], dtype=np.int64)
        bought[self.purchase_visit, j] = True
        time[self.purchase_visit, j] = self.purchase_time_s
        return bought, time


class _Problems:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, file: str, column: str, where: str, rule: str) -> None:
        self.lines.append(f"{file}: column '{column}'{where}: {rule}")

    def rows(self, file: str, column: str, mask: np.ndarray, values: Any, rule: str) -> None:
        idx = np.flatnonzero(mask)
        for i in idx[:MAX_LISTED]:
            v = values[i]
            shown = repr(v.item() if hasattr(v, "item") else v)
            self.add(file, column, f", row {int(i) + 1} (value {shown})", rule)
        if len(idx) > MAX_LISTED:
            self.add(file, column, f", {len(idx) - MAX_LISTED} more rows", rule)

    def raise_if_any(self, source: str) -> None:
        if self.lines:
            exc = DataError(f"{source}: {len(self.lines)} problem{'s' * (len(self.lines) != 1)} with the field data:\n"
                            + "\n".join(self.lines))
            exc.problems = list(self.lines)  # type: ignore[attr-defined]
            raise exc


def _read(folder: Path, name: str, problems: _Problems) -> tuple[Any, str] | None:
    import pandas as pd

    found = [p for p in (folder / f"{name}.csv", folder / f"{name}.parquet") if p.is_file()]
    if not found:
        problems.lines.append(f"{folder}: no '{name}.csv' or '{name}.parquet' (the {name} table is required)")
        return None
    if len(found) > 1:
        problems.lines.append(f"{folder}: both '{name}.csv' and '{name}.parquet' (keep one, so that the data "
                              "read is unambiguous)")
        return None
    path = found[0]
    try:
        if path.suffix == ".csv":
            df = pd.read_csv(path, dtype=str, keep_default_na=False)
        else:
            df = pd.read_parquet(path)
    except Exception as exc:
        problems.lines.append(f"{path}: cannot be read as {path.suffix[1:]}: {type(exc).__name__}: {exc}")
        return None
    return df, str(path)


def _numeric(df: Any, file: str, column: str, problems: _Problems) -> np.ndarray:
    import pandas as pd

    raw = df[column]
    num = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(num)
    problems.rows(file, column, bad, raw.to_numpy(), "must be a finite number")
    return num


def field_data_from_tables(visits: Any, purchases: Any, *, products: list[str], duration_s: float,
                           slots: dict[str, tuple[float, float]] | None = None, visits_name: str = "visits",
                           purchases_name: str = "purchases", source: str = "<data>") -> FieldData:
    """Check two DataFrames against the rules of field data and a spec's design.

    Parameters
    ----------
    visits, purchases : DataFrame
        The tables (columns as in :data:`VISIT_COLUMNS`, :data:`PURCHASE_COLUMNS`).
    products : list of str
        The spec's products (a purchase of another product is refused).
    duration_s : float
        The stream's duration; visits must lie in ``[0, duration_s]``.
    slots : dict, optional
        Each product's slot on show; a purchase outside it is refused.

    Raises
    ------
    DataError
        With one line per problem (``DataError.problems``).
    """
    problems = _Problems()
    for df, file, cols in ((visits, visits_name, VISIT_COLUMNS), (purchases, purchases_name, PURCHASE_COLUMNS)):
        for c in cols:
            if c not in df.columns:
                problems.add(file, c, "", f"missing (the table needs {', '.join(cols)})")
    problems.raise_if_any(source)

    vid = visits["visit_id"].astype(str).to_numpy()
    empty = np.array([v.strip() == "" for v in vid], bool)
    problems.rows(visits_name, "visit_id", empty, vid, "must not be empty")
    dup_mask = np.zeros(len(vid), bool)
    seen: set[str] = set()
    for i, v in enumerate(vid):
        if v in seen:
            dup_mask[i] = True
        seen.add(v)
    problems.rows(visits_name, "visit_id", dup_mask, vid, "visit ids must be unique (this one is repeated)")
    a = _numeric(visits, visits_name, "arrival_s", problems)
    d = _numeric(visits, visits_name, "departure_s", problems)
    ok = np.isfinite(a) & np.isfinite(d)
    problems.rows(visits_name, "arrival_s", ok & (a < 0), a, "must be >= 0 (seconds from the stream's start)")
    problems.rows(visits_name, "departure_s", ok & (d > duration_s * (1 + 1e-12)), d,
                  f"must be <= the stream's duration ({duration_s:g} s in the spec)")
    problems.rows(visits_name, "departure_s", ok & (d < a), d, "must not be before the visit's arrival_s")

    pv = purchases["visit_id"].astype(str).to_numpy()
    prod = purchases["product"].astype(str).to_numpy()
    t = _numeric(purchases, purchases_name, "time_s", problems)
    for c in OPTIONAL_PURCHASE_COLUMNS:
        if c in purchases.columns:
            _numeric(purchases, purchases_name, c, problems)
    index = {v: i for i, v in enumerate(vid)}
    row = np.array([index.get(v, -1) for v in pv], dtype=np.int64)
    problems.rows(purchases_name, "visit_id", row < 0, pv, f"names no visit of the {visits_name} table")
    known = set(products)
    unknown = np.array([p not in known for p in prod], bool)
    problems.rows(purchases_name, "product", unknown, prod,
                  f"is not a product of the spec's lineup ({', '.join(products)})")
    good = (row >= 0) & np.isfinite(t) & ~unknown
    ar = np.where(good, a[np.maximum(row, 0)], np.nan)
    dr = np.where(good, d[np.maximum(row, 0)], np.nan)
    with np.errstate(invalid="ignore"):
        problems.rows(purchases_name, "time_s", good & ((t < ar) | (t > dr)), t,
                      "must lie within its visit (between the visit's arrival_s and departure_s)")
        if slots:
            lo = np.array([slots.get(p, (0.0, duration_s))[0] for p in prod])
            hi = np.array([slots.get(p, (0.0, duration_s))[1] for p in prod])
            problems.rows(purchases_name, "time_s", good & ((t < lo) | (t > hi)), t,
                          "must lie within the product's slot on show (lineup.PRODUCT.slot_s)")
    pairs = [f"{r}\x00{p}" for r, p in zip(row, prod, strict=True)]
    seen = set()
    rep = np.zeros(len(pairs), bool)
    for i, k in enumerate(pairs):
        if good[i] and k in seen:
            rep[i] = True
        seen.add(k)
    problems.rows(purchases_name, "product", rep, prod,
                  "a second purchase of the same product in one visit (the model allows one per product and visit)")
    problems.raise_if_any(source)
    return FieldData(visit_id=vid, arrival_s=a, departure_s=d, purchase_visit=row, purchase_product=prod,
                     purchase_time_s=t, source=source)


def read_field_data(folder: str | Path, *, products: list[str], duration_s: float,
                    slots: dict[str, tuple[float, float]] | None = None) -> FieldData:
    """Read and check a data folder's ``visits`` and ``purchases`` tables (CSV or Parquet).

    Raises
    ------
    DataError
        With one line per problem: a missing table or column, a value that is
        not a number, a negative or reversed time, a purchase outside its
        visit or its product's slot, an unknown product or visit, a duplicate
        visit id.
    """
    folder = Path(folder)
    problems = _Problems()
    if not folder.is_dir():
        problems.lines.append(f"{folder}: no such folder (give the folder holding visits and purchases)")
        problems.raise_if_any(str(folder))
    v = _read(folder, "visits", problems)
    p = _read(folder, "purchases", problems)
    problems.raise_if_any(str(folder))
    assert v is not None and p is not None
    return field_data_from_tables(v[0], p[0], products=products, duration_s=duration_s, slots=slots,
                                  visits_name=v[1], purchases_name=p[1], source=str(folder))
