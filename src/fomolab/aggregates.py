"""Stored per-run aggregates, and the folder index that gathers them.

The picture: a run's tally sheet, written beside its per-viewer tables.  Each
finished run stores, next to ``shoppers`` and ``events``, three small tables
computed from them when the run is written (:func:`aggregate`):

* ``exposure``: per segment and minute of stream time, the viewer-seconds
  watched and at risk of a first purchase, arrivals, first purchases and
  departures without a purchase — the person-time and event counts that
  rates and piecewise-exponential models need;
* ``sales``: per segment, product and minute, purchases and money spent;
* ``purchase_times``: each buyer's time from arrival to first purchase (sorted,
  one row per buyer), so that medians and other quantiles pooled over runs
  are exact.

Their columns are in ``docs/schema.md``.  They are run partitions like the
others: checksummed in the run's commit record, verified with it.

A folder with thousands of runs has thousands of small partitions, and opening
each costs more than reading it.  The *index* ``DIR/index/`` holds, for the
``runs`` table and the aggregate tables, one file each with the rows of every
finished run, and ``index.json`` naming those runs with a digest of their
partitions' checksums (from their commit records); and, for each run's stored
facts (``products``, ``tactics``, ``windows``, ``product_results``), one file each
with every run's rows as a row group of its own.  Only the writer
(``fomolab run``, under the folder's lock) writes it, at the end of each
invocation, reusing the rows of runs it already holds; a reader uses it only
when it names exactly the folder's finished runs with the same digests, and
otherwise reads the partitions, with the same result.  It is derived data:
deleting it loses nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from fomolab.recorder import Tables

__all__ = ["AGGREGATE_TABLES", "INDEXED_TABLES", "FACT_TABLES", "BIN_S", "aggregate", "read_index", "write_index",
           "index_current", "index_facts"]

#: The per-run aggregate tables, in the order they are written.
AGGREGATE_TABLES = ("exposure", "sales", "purchase_times")
#: Tables gathered in the folder index (``DIR/index/<table>.<token>.parquet``).
INDEXED_TABLES = ("runs", *AGGREGATE_TABLES)
#: Each run's stored facts, gathered in the index too, one row group per run (each with its own
#: dictionaries, as in its partition): the row groups read in the folder's order give the frame that
#: reading the partitions gives, from one file instead of one per run.
FACT_TABLES = ("products", "tactics", "windows", "product_results")
#: Width of the time bins of ``exposure`` and ``sales`` (s of stream time); the last bin ends at the stream's end.
BIN_S = 60.0
INDEX = "index"
#: The commit records of the finished runs, cached by the writer in the index folder (``fomolab.store``).
RECORDS = "commits.json"
_INDEX_JSON = "index.json"
_INDEX_FORMAT = 2


def _bins(duration_s: float, *times: np.ndarray) -> np.ndarray:
    """Minute bin edges from 0 to the stream's end (or the last time seen in ``times``, if later)."""
    import numpy as np

    end = float(duration_s) if np.isfinite(duration_s) and duration_s > 0 else 0.0
    if any(np.isfinite(t).any() for t in times):
        end = max(end, max(float(np.nanmax(t)) for t in times if len(t) and not np.isnan(t).all()))
    edges = np.arange(0.0, end, BIN_S)
    return np.append(edges, end) if len(edges) else np.array([0.0, max(end, BIN_S)])


def _overlap(a: np.ndarray, b: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Seconds of the intervals ``[a, b)`` that fall in each bin between ``edges``."""
    import numpy as np

    a, b = np.sort(a), np.sort(b)
    ca = np.concatenate([[0.0], np.cumsum(a)])
    cb = np.concatenate([[0.0], np.cumsum(b)])
    ka = np.searchsorted(a, edges, side="right")
    kb = np.searchsorted(b, edges, side="right")
    return np.diff((ka * edges - ca[ka]) - (kb * edges - cb[kb]))


def _count(t: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """How many of the times ``t`` fall in each bin ``[e_k, e_k+1)`` (the last bin closed)."""
    import numpy as np

    t = t[np.isfinite(t)]
    idx = np.clip(np.searchsorted(edges, t, side="right") - 1, 0, len(edges) - 2)
    return np.bincount(idx, minlength=len(edges) - 1).astype(np.int64)


def aggregate(tables: Tables) -> dict[str, pd.DataFrame]:
    """The aggregate tables of one run, computed from its ``shoppers``, ``events`` and ``runs`` tables.

    Parameters
    ----------
    tables : fomolab.recorder.Tables
        One run's tables, as the engine returns them (or as read back).

    Returns
    -------
    dict of str to pandas.DataFrame
        ``exposure``, ``sales`` and ``purchase_times`` (``docs/schema.md``).

    Notes
    -----
    A visit is at risk of a first purchase from its arrival until its first
    purchase or its departure.  In a marketplace ``exposure`` counts visits;
    ``purchase_times`` counts viewers (first arrival to first purchase over all
    their visits, as the ``runs`` table's median does).
    """
    import numpy as np
    import pandas as pd

    run = tables.runs.iloc[0]
    need = ["shopper_id", "segment", "arrival_s", "departure_s", "first_purchase_s"]
    src = tables.source("shoppers") if hasattr(tables, "source") else None
    if src is not None:  # the run's own arrays (fomolab.recorder.Columns): views, not a copy of the table
        sh = src.frame(columns=need + (["stream"] if "stream" in src.frame(0, 0).columns else []))
    else:
        sh = tables.shoppers
    ev_src = tables.source("events") if hasattr(tables, "source") else None
    buys = _purchases(ev_src) if ev_src is not None else tables.events[tables.events["kind"] == "purchase"]
    ident = {"run_id": str(run["run_id"]), "arm": str(run["arm"]), "point": int(run["point"]),
             "replicate": int(run["replicate"])}
    seg_cats = list(sh["segment"].cat.categories) if hasattr(sh["segment"], "cat") else sorted(set(sh["segment"]))
    seg = pd.Categorical(sh["segment"], categories=seg_cats).codes.astype(np.int64)
    a = sh["arrival_s"].to_numpy(float)
    d = sh["departure_s"].to_numpy(float)
    f = sh["first_purchase_s"].to_numpy(float)
    bought = np.isfinite(f)
    stop = np.where(bought, np.minimum(f, d), d)
    bt = buys["time_s"].to_numpy(float)
    edges = _bins(float(run.get("duration_s", np.nan)), d, bt)
    nb = len(edges) - 1
    S = len(seg_cats)
    rows: dict[str, list[np.ndarray]] = {k: [] for k in ("watch_s", "at_risk_s", "arrivals", "first_purchases",
                                                         "left_without_buying")}
    for s in range(S):
        m = seg == s
        rows["watch_s"].append(_overlap(a[m], d[m], edges))
        rows["at_risk_s"].append(_overlap(a[m], stop[m], edges))
        rows["arrivals"].append(_count(a[m], edges))
        rows["first_purchases"].append(_count(f[m & bought], edges))
        rows["left_without_buying"].append(_count(d[m & ~bought], edges))
    n = S * nb
    exposure = pd.DataFrame({
        **_ident(ident, n),
        "segment": pd.Categorical.from_codes(np.repeat(np.arange(S), nb), categories=seg_cats),
        "bin_start_s": np.tile(edges[:-1], S), "bin_end_s": np.tile(edges[1:], S),
        **{k: np.concatenate(v) if v else np.empty(0) for k, v in rows.items()},
    })
    for k in ("arrivals", "first_purchases", "left_without_buying"):
        exposure[k] = exposure[k].astype(np.int64)
    # sales: the buyer's segment (a viewer's segment is the same in all its visits)
    prod = buys["product"]
    prod_cats = list(prod.cat.categories) if hasattr(prod, "cat") else sorted(set(prod.astype(str)))
    pcode = pd.Categorical(prod, categories=prod_cats).codes.astype(np.int64)
    bseg = _lookup(sh["shopper_id"].to_numpy(), seg, buys["shopper_id"].to_numpy(dtype=np.int64, na_value=-1))
    bidx = np.clip(np.searchsorted(edges, bt, side="right") - 1, 0, nb - 1)
    P = len(prod_cats)
    key = (bseg.astype(np.int64) * P + pcode) * nb + bidx
    size = S * P * nb
    count = np.bincount(key, minlength=size) if len(key) else np.zeros(size, np.int64)
    spend = (np.bincount(key, weights=buys["value"].to_numpy(float), minlength=size) if len(key)
             else np.zeros(size))
    keep = np.flatnonzero(count)
    s_i, rem = np.divmod(keep, P * nb)
    p_i, b_i = np.divmod(rem, nb)
    sales = pd.DataFrame({
        **_ident(ident, len(keep)),
        "segment": pd.Categorical.from_codes(s_i, categories=seg_cats),
        "product": pd.Categorical.from_codes(p_i, categories=prod_cats),
        "bin_start_s": edges[:-1][b_i], "bin_end_s": edges[1:][b_i],
        "purchases": count[keep].astype(np.int64), "spend": spend[keep],
    })
    # purchase times per viewer: first arrival to first purchase over the viewer's visits
    if "stream" in sh.columns:
        g = pd.DataFrame({"id": sh["shopper_id"].to_numpy(), "seg": seg, "a": a, "f": f}).groupby("id", sort=False)
        v = g.agg(seg=("seg", "first"), a=("a", "min"), f=("f", "min"))
        vseg, va, vf = v["seg"].to_numpy(), v["a"].to_numpy(float), v["f"].to_numpy(float)
    else:
        vseg, va, vf = seg, a, f
    ok = np.isfinite(vf)
    ttp = vf[ok] - va[ok]
    order = np.argsort(ttp, kind="stable")
    times = pd.DataFrame({
        **_ident(ident, len(order)),
        "segment": pd.Categorical.from_codes(vseg[ok][order], categories=seg_cats),
        "time_to_purchase_s": ttp[order],
    })
    return {"exposure": exposure, "sales": sales, "purchase_times": times}


def _purchases(events: Any) -> pd.DataFrame:
    """The purchase rows of an events table held as :class:`~fomolab.recorder.Columns`, in table order,
    read a slice at a time (only the columns the aggregates need)."""
    import pandas as pd

    cols = ["time_s", "kind", "product", "shopper_id", "value"]
    parts = [f[f["kind"] == "purchase"] for f in events.frames(1 << 20, cols)]
    return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]


def _lookup(keys: np.ndarray, values: np.ndarray, query: np.ndarray) -> np.ndarray:
    """``values`` at the first position of each of ``query`` in ``keys`` (each query is among the keys)."""
    import numpy as np

    if not len(query):
        return np.empty(0, values.dtype)
    if len(keys) > 1 and bool((keys[1:] >= keys[:-1]).all()):
        return values[np.searchsorted(keys, query, side="left")]
    order = np.argsort(keys, kind="stable")
    return values[order[np.searchsorted(keys[order], query, side="left")]]


def _ident(ident: dict[str, Any], n: int) -> dict[str, Any]:
    import numpy as np
    import pandas as pd

    return {"run_id": pd.Categorical.from_codes(np.zeros(n, dtype=np.int8), categories=[ident["run_id"]]),
            "arm": pd.Categorical.from_codes(np.zeros(n, dtype=np.int8), categories=[ident["arm"]]),
            "point": np.full(n, ident["point"], dtype=np.int64),
            "replicate": np.full(n, ident["replicate"], dtype=np.int64)}


# ----------------------------------------------------------------- the folder index

def run_digest(record: dict[str, Any]) -> str:
    """A digest of a run's indexed partitions' checksums, from its commit record ('' if one is missing)."""
    parts = record.get("partitions", {})
    shas = [parts.get(t, {}).get("sha256") for t in INDEXED_TABLES]
    if not all(shas):
        return ""
    return hashlib.sha256("".join(str(s) for s in shas).encode()).hexdigest()[:32]


def fact_digest(record: dict[str, Any]) -> str:
    """A digest of a run's fact partitions' checksums, from its commit record (a missing table counts as '')."""
    parts = record.get("partitions", {})
    shas = [str(parts.get(t, {}).get("sha256", "")) for t in FACT_TABLES]
    return hashlib.sha256(":".join(shas).encode()).hexdigest()[:32]


def index_facts(folder: Path, info: dict[str, Any], commits: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """The index's fact files (``{"files": {table: name}, "runs": [run ids, one row group each]}``) if they hold
    exactly the fact partitions of ``commits`` (``info``: a current index's description), else None."""
    facts = info.get("facts")
    if not isinstance(facts, dict) or not isinstance(facts.get("runs"), list) \
            or len(facts["runs"]) != len(commits):
        return None
    for rid, dg in zip(facts["runs"], facts.get("digests", []), strict=False):
        rec = commits.get(rid)
        if rec is None or fact_digest(rec) != dg:
            return None
    for t, name in facts.get("files", {}).items():
        try:
            if (folder / INDEX / name).stat().st_size != facts.get("bytes", {}).get(t):
                return None
        except OSError:
            return None
    return facts


def _write_facts(folder: Path, commits: dict[str, dict[str, Any]], order: list[str], old: dict[str, Any] | None,
                 token: str) -> dict[str, Any]:
    """Write the fact tables of the runs ``order`` into the index, one row group per run in that order (those
    of the old index reused where a run's fact partitions are the same); a table some run lacks, or stored
    with another schema, is left out (it is read from the partitions)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    d = folder / INDEX
    digests = [fact_digest(commits[rid]) for rid in order]
    prev = old.get("facts") if old is not None else None
    reuse: dict[str, int] = {}
    if not isinstance(prev, dict) or not isinstance(prev.get("files"), dict):
        prev = {"files": {}}
    elif isinstance(prev.get("runs"), list):
        mine = dict(zip(order, digests, strict=True))
        reuse = {rid: k for k, (rid, dg) in enumerate(zip(prev["runs"], prev.get("digests", []), strict=False))
                 if mine.get(rid) == dg}
    files: dict[str, str] = {}
    for t in FACT_TABLES:
        if not all(t in commits[rid].get("partitions", {}) for rid in order):
            continue
        name = f"{t}.{token}.parquet"
        source = writer = None
        try:
            if reuse and t in prev["files"]:
                source = pq.ParquetFile(d / prev["files"][t])
            tabs = [source.read_row_group(reuse[rid]) if source is not None and rid in reuse
                    else pq.read_table(folder / t / f"{rid}.parquet") for rid in order]
            # the schema of a run with rows: a run without any stores a text column as nulls
            schema = next((x.schema for x in tabs if x.num_rows), tabs[0].schema)
            writer = pq.ParquetWriter(d / name, schema)
            for tab in tabs:
                if not tab.schema.equals(schema, check_metadata=False) and not tab.num_rows:
                    tab = tab.cast(schema)
                writer.write_table(tab.replace_schema_metadata(schema.metadata),  # pandas metadata may differ
                                   row_group_size=max(1, tab.num_rows))  # one row group per run
            writer.close()
            if pq.read_metadata(d / name).num_row_groups != len(order):
                raise ValueError("not one row group per run")
            files[t] = name
        except (OSError, ValueError, KeyError, pa.ArrowException):  # e.g. schemas that differ: not indexed
            if writer is not None:
                writer.close()
            (d / name).unlink(missing_ok=True)
        finally:
            if source is not None:
                source.close()
    return {"files": files, "bytes": {t: (d / name).stat().st_size for t, name in files.items()},
            "runs": order, "digests": digests}


def _read_json(folder: Path) -> dict[str, Any] | None:
    try:
        info = json.loads((folder / INDEX / _INDEX_JSON).read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    if not isinstance(info, dict) or info.get("format") != _INDEX_FORMAT or not isinstance(info.get("runs"), dict):
        return None
    return info


def index_current(folder: Path, commits: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """The index's description if it holds exactly the runs ``commits`` (run id -> commit record), else None."""
    info = _read_json(folder)
    if info is None or len(info["runs"]) != len(commits):
        return None
    runs = info["runs"]
    for rid, rec in commits.items():
        dg = runs.get(rid)
        if not dg or dg != run_digest(rec):
            return None
    for t in INDEXED_TABLES:  # each file as it was written (its size; the writer checks its checksum)
        name, size = info["files"].get(t, ""), info.get("bytes", {}).get(t)
        try:
            if not name or (folder / INDEX / name).stat().st_size != size:
                return None
        except OSError:
            return None
    return info


def read_index(folder: Path, commits: dict[str, dict[str, Any]], table: str,
               columns: list[str] | None = None, codes: bool = False, filter: Any = None) -> pd.DataFrame | None:
    """One indexed table of all the finished runs ``commits``, or None if the index is not current.

    With ``codes``, the text columns (run, arm, segment, product) come as categoricals;
    ``filter`` (a pyarrow expression) keeps only the rows for which it is true.
    """
    import pyarrow.parquet as pq

    info = index_current(folder, commits)
    if info is None:
        return None
    try:
        path = folder / INDEX / info["files"][table]
        names = pq.read_schema(path).names
        text = [c for c in ("run_id", "arm", "segment", "product") if c in names and (columns is None or c in columns)]
        if filter is None:  # one file: without read_table's dataset (and the 20 MB of modules it imports)
            return pq.ParquetFile(path, read_dictionary=text if codes else None).read(columns=columns).to_pandas()
        return pq.read_table(path, columns=columns, read_dictionary=text if codes else None,
                             filters=filter).to_pandas()
    except (OSError, ValueError, KeyError):
        return None


def write_index(folder: Path, commits: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """Bring the folder index up to date with the finished runs ``commits`` (the writer, under its lock).

    Rows of runs the old index holds with the same digest are kept; the
    other runs' partitions are read.  Runs without aggregate partitions
    (written by an earlier fomolab) leave the index unwritten.  The new files
    are written first, then ``index.json`` (atomically), then the old files
    are removed.  Returns the index's description (as :func:`index_current`
    gives it) if the index is current afterwards, else None.
    """
    current = index_current(folder, commits)
    if current is not None and index_facts(folder, current, commits) is not None:
        return current
    import pyarrow as pa
    import pyarrow.parquet as pq

    digests = {rid: run_digest(rec) for rid, rec in commits.items()}
    if not digests or not all(digests.values()):
        return None
    d = folder / INDEX
    d.mkdir(exist_ok=True)
    old = _read_json(folder)
    keep = {rid for rid, dg in (old or {}).get("runs", {}).items() if digests.get(rid) == dg}
    order = sorted(digests)
    new = [rid for rid in order if rid not in keep]
    token = uuid.uuid4().hex[:12]
    files = {}
    try:
        for t in INDEXED_TABLES:
            parts = []
            if keep and old is not None:
                try:
                    if _sha(d / old["files"][t]) != old.get("sha256", {}).get(t):
                        raise ValueError("the index file is not as it was written")
                    prev = pq.read_table(d / old["files"][t])
                    mask = pa.compute.is_in(prev.column("run_id").cast(pa.string()),
                                            value_set=pa.array(sorted(keep), pa.string()))
                    parts.append(prev.filter(mask))
                except (OSError, ValueError, KeyError, pa.ArrowInvalid):
                    return _rebuild_all(folder, commits)
            parts += _read_parts([folder / t / f"{rid}.parquet" for rid in new])
            tab = _concat(parts)
            files[t] = f"{t}.{token}.parquet"
            pq.write_table(tab, d / files[t])
        facts = _write_facts(folder, commits, order, old, token)
        info = {"format": _INDEX_FORMAT, "files": files, "facts": facts,
                "arms": _per_arm(d / files["runs"], d / files["purchase_times"]),
                "bytes": {t: (d / name).stat().st_size for t, name in files.items()},
                "sha256": {t: _sha(d / name) for t, name in files.items()},
                "runs": {rid: digests[rid] for rid in order}}
        tmp = d / f".{_INDEX_JSON}.{token}"
        tmp.write_text(json.dumps(info))
        os.replace(tmp, d / _INDEX_JSON)
    except OSError:
        for name in files.values():
            (d / name).unlink(missing_ok=True)
        for t in FACT_TABLES:
            (d / f"{t}.{token}.parquet").unlink(missing_ok=True)
        return None
    for p in d.iterdir():
        if p.name not in (_INDEX_JSON, RECORDS) and p.name not in files.values() \
                and p.name not in facts["files"].values():
            p.unlink(missing_ok=True)
    return info


def _per_arm(runs: Path, times: Path) -> dict[str, dict[str, float]]:
    """Per arm, what the run summary prints: runs, sums of viewers, buyers, units and revenue, and the
    median time to first purchase pooled over the arm's buyers (exact)."""
    import pyarrow.parquet as pq

    r = pq.read_table(runs, columns=["arm", "viewers", "buyers", "units_sold", "revenue"]).to_pandas()
    t = pq.read_table(times, columns=["arm", "time_to_purchase_s"], read_dictionary=["arm"]).to_pandas()
    g = r.groupby("arm", sort=False)
    med = t.groupby("arm", observed=True, sort=False).time_to_purchase_s.median()
    med.index = med.index.astype(str)
    return {str(arm): {"runs": len(x), "viewers": int(x.viewers.sum()), "buyers": int(x.buyers.sum()),
                       "units_sold": int(x.units_sold.sum()), "revenue": float(x.revenue.sum()),
                       "median_time_to_purchase_s": float(med.get(str(arm), float("nan")))}
            for arm, x in g}


def _read_parts(files: list[Path]) -> list[Any]:
    """Partitions as Arrow tables: one threaded dataset scan, or file by file if their schemas differ."""
    import pyarrow as pa
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    if not files:
        return []
    try:
        return [ds.dataset([str(f) for f in files], format="parquet").to_table()]
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return [pq.read_table(f) for f in files]


def _sha(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _rebuild_all(folder: Path, commits: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    import shutil

    shutil.rmtree(folder / INDEX, ignore_errors=True)
    return write_index(folder, commits)


def _concat(parts: list[Any]) -> Any:
    """Tables of several runs as one, dictionaries unified (each run's categories are its own)."""
    import pyarrow as pa

    if not parts:
        return pa.table({})
    plain = []
    for t in parts:
        cols = [c.cast(c.type.value_type) if pa.types.is_dictionary(c.type) else c for c in t.columns]
        plain.append(pa.table(cols, names=t.column_names))
    return pa.concat_tables(plain, promote_options="default")
