"""Compare two experiments over seeds: the finished runs of each in one or more MLflow stores,
their test accuracy per seed, means, the difference, Welch's t and a permutation p-value.

    python experiments/analysis/compare_seeds.py increasing_inhibition diehl_cook outputs/mlflow.db
    python experiments/analysis/compare_seeds.py increasing_inhibition diehl_cook runs/*/outputs/mlflow.db

Runs are matched by their MLflow experiment (the config's ``name``) and their ``seed`` param;
where a seed ran more than once the latest finished run counts. The permutation test asks how
often a random relabelling of the pooled accuracies gives a lead of A over B at least as large
as the one observed (one-sided; exact when there are at most a million splits).
"""

from __future__ import annotations

import itertools
import math
import random
import statistics
import sys
from pathlib import Path

METRICS = ("test_accuracy", "test_accuracy_proportion")


def welch_t(a: list[float], b: list[float]) -> float:
    """Welch's t for mean(a) - mean(b) (unequal variances)."""
    se = math.sqrt(statistics.variance(a) / len(a) + statistics.variance(b) / len(b))
    return (statistics.fmean(a) - statistics.fmean(b)) / se


def permutation_p(a: list[float], b: list[float], max_exact: int = 1_000_000, n_random: int = 200_000) -> float:
    """One-sided p: the share of splits of a + b into groups of len(a) and len(b) whose
    difference of means is >= the observed one (the observed split included)."""
    pooled, n_a = a + b, len(a)
    total, observed = sum(pooled), statistics.fmean(a) - statistics.fmean(b)
    n_b = len(pooled) - n_a

    def diff(sum_a: float) -> float:
        return sum_a / n_a - (total - sum_a) / n_b

    eps = 1e-9 * max(1.0, abs(observed))
    if math.comb(len(pooled), n_a) <= max_exact:
        hits = count = 0
        for idx in itertools.combinations(range(len(pooled)), n_a):
            count += 1
            hits += diff(sum(pooled[i] for i in idx)) >= observed - eps
        return hits / count
    rng = random.Random(0)
    hits = 1 + sum(diff(sum(rng.sample(pooled, n_a))) >= observed - eps for _ in range(n_random))
    return hits / (n_random + 1)


def load(stores: list[str], experiment: str) -> dict[int, tuple[float, ...]]:
    """{seed: (test accuracy in %, per METRICS)} of the finished runs of ``experiment``; warns
    (stderr) when those runs differ in anything but the seed and what cannot change results."""
    import mlflow

    out: dict[int, tuple[float, float, int]] = {}
    params: dict[int, dict[str, str]] = {}
    for store in stores:
        path = Path(store)
        if not path.is_file():
            raise SystemExit(f"compare_seeds: no MLflow store at {store}")
        client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{path.resolve()}")
        exp = client.get_experiment_by_name(experiment)
        if exp is None:
            continue
        for run in client.search_runs([exp.experiment_id], "attributes.status = 'FINISHED'"):
            metrics, seed = run.data.metrics, run.data.params.get("seed")
            if seed is None or not all(k in metrics for k in METRICS):
                continue
            s, start = int(seed), run.info.start_time
            if s not in out or start > out[s][-1]:
                out[s] = (*(100.0 * metrics[k] for k in METRICS), start)
                params[s] = dict(run.data.params)
    differ = differing(list(params.values()))
    if differ:
        shown = "; ".join(f"{k}: {', '.join(sorted(v))}" for k, v in list(differ.items())[:5])
        print(f"compare_seeds: warning: the runs of {experiment!r} differ in more than the seed ({shown}"
              f"{'; ...' if len(differ) > 5 else ''}): the seeds are not repeats of one config", file=sys.stderr)
    return {s: v[:-1] for s, v in sorted(out.items())}


def differing(runs: list[dict[str, str]]) -> dict[str, set[str]]:
    """Params whose values differ between ``runs``, leaving out the seed and the keys that
    cannot change results (snnrun.run.resume.HARMLESS: device, progress, tracking, ...)."""
    from snnrun.run.resume import HARMLESS

    keys = set().union(*runs) if runs else set()
    out = {}
    for k in sorted(keys):
        if k == "seed" or any(k == h or (h.endswith(".") and k.startswith(h)) for h in HARMLESS):
            continue
        values = {r.get(k, "(unset)") for r in runs}
        if len(values) > 1:
            out[k] = values
    return out


def report(name_a: str, a: dict[int, tuple[float, ...]], name_b: str, b: dict[int, tuple[float, ...]]) -> str:
    lines = [f"| seed | {name_a} | {name_b} | difference |", "|---|---|---|---|"]

    def fmt(values, sign: str = "") -> str:
        return " / ".join(f"{x:{sign}.2f}" for x in values)

    for s in sorted(set(a) | set(b)):
        d = fmt((x - y for x, y in zip(a[s], b[s])), "+") if s in a and s in b else ""
        lines.append(f"| {s} | {fmt(a[s]) if s in a else ''} | {fmt(b[s]) if s in b else ''} | {d} |")
    lines.append("")  # the statistics below the table, not rows of it (markdown)
    for i, metric in enumerate(METRICS):
        xa, xb = [v[i] for v in a.values()], [v[i] for v in b.values()]
        if len(xa) < 2 or len(xb) < 2:
            lines.append(f"- {metric}: needs two seeds of each")
            continue
        paired = [a[s][i] - b[s][i] for s in a if s in b]
        lines.append(
            f"- {metric}: {name_a} {statistics.fmean(xa):.2f} (sd {statistics.stdev(xa):.2f}, n {len(xa)}), "
            f"{name_b} {statistics.fmean(xb):.2f} (sd {statistics.stdev(xb):.2f}, n {len(xb)}); "
            f"difference {statistics.fmean(xa) - statistics.fmean(xb):+.2f}, Welch t {welch_t(xa, xb):.2f}, "
            f"permutation p {permutation_p(xa, xb):.4f} (one-sided); {name_a} ahead on "
            f"{sum(d > 0 for d in paired)} of {len(paired)} shared seeds"
        )
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    if len(argv) < 3:
        raise SystemExit(__doc__)
    name_a, name_b, stores = argv[0], argv[1], argv[2:]
    a, b = load(stores, name_a), load(stores, name_b)
    for name, runs in ((name_a, a), (name_b, b)):
        if not runs:
            raise SystemExit(f"compare_seeds: no finished run of experiment {name!r} with a seed and test accuracy in {stores}")
    print(report(name_a, a, name_b, b))


if __name__ == "__main__":
    main(sys.argv[1:])
