"""Sweep specs for the executor benchmarks, written to a temporary folder."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

TEMPLATE = """
[experiment]
name = "{name}"
seed = 5
replicates = {replicates}

[stream]
duration_s = {duration}
[stream.arrivals]
rate_per_s = {rate}

[population]
profile = "mixed"

[lineup.lipstick]
price = 25.0
base_rate_per_s = 4.0e-4
stock = {stock}
[lineup.lipstick.tactics.lightning_sale]
start_s = {sale_start}
end_s = {sale_end}
discount = 0.3
gain = 3.0
[lineup.lipstick.tactics.social_proof]
gain = 1.0
saturation = 20

[arms.control]
tactics = ["lipstick.lightning_sale"]
[arms.proof]
tactics = ["lipstick.*"]

[sweep]
design = "grid"
[sweep.parameters]
"lineup.lipstick.tactics.lightning_sale.discount" = {discounts}
"""


def write_sweep(folder: Path, *, name: str, points: int, replicates: int, duration: float, rate: float,
                stock: int) -> Path:
    """A two-arm sweep of ``2 * points * replicates`` runs."""
    discounts = [round(0.05 + 0.5 * k / max(points - 1, 1), 4) for k in range(points)]
    text = TEMPLATE.format(name=name, replicates=replicates, duration=duration, rate=rate, stock=stock,
                           sale_start=duration / 3, sale_end=duration / 2, discounts=discounts)
    path = folder / f"{name}.toml"
    path.write_text(text)
    return path
