"""From episodes to the benchmark's outputs: records, a markdown table, JSON and a plot."""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Sequence
from pathlib import Path

from torchrl_grasp.benchmark.episodes import Episode


def wilson_interval(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% Wilson score interval of a success rate: honest at 0 and 1 and for few trials.

    Examples:
        >>> [round(x, 3) for x in wilson_interval(7, 16)]
        [0.231, 0.668]
        >>> [round(x, 3) for x in wilson_interval(0, 32)]  # no success in 32 still allows about 11%
        [0.0, 0.107]
    """
    if trials == 0:
        return 0.0, 1.0
    rate = successes / trials
    centre = (rate + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(rate * (1 - rate) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return max(0.0, centre - half), min(1.0, centre + half)


def quartiles(values: Sequence[float]) -> tuple[float, float] | None:
    """The first and third quartiles (``statistics.quantiles``, inclusive); ``None`` without values.

    Examples:
        >>> quartiles([1.0, 2.0, 3.0, 4.0, 5.0]), quartiles([2.0]), quartiles([])
        ((2.0, 4.0), (2.0, 2.0), None)
    """
    if not values:
        return None
    if len(values) == 1:
        return values[0], values[0]
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q3


def summarise(
    env: str,
    horizon: int,
    planner: str,
    mode: str,
    episodes: Sequence[Episode],
    *,
    success_threshold: float | None = 0.05,
    **extra,
) -> dict:
    """One record: success rate, median planning time of the successes, and the cost per plan.

    Keys: ``env``, ``horizon``, ``planner``, ``mode``, ``episodes``, ``success_rate``,
    ``median_time_to_success_s`` (``None`` without a success), ``seconds_per_plan``,
    ``model_calls_per_plan``, ``predicted_success_rate`` (the first plan reaches the goal in the
    model: a model that is exploited predicts more successes than the real env grants; ``None``
    when ``success_threshold`` is, for an env whose success is not a distance, and for planners
    that return no plan),
    ``median_model_error`` (along the executed paths), ``median_final_distance`` (the real
    env's distance to the goal at the end), ``success_interval`` (the 95% Wilson interval),
    ``time_to_success_iqr`` (quartiles of the successes' planning time, ``None`` without one),
    ``model_transitions_per_plan`` (world-model evaluations, :attr:`PlanResult.model_transitions
    <torchrl_grasp.PlanResult>`), ``median_plan_penalty`` (the ensemble's disagreement summed along
    the first plans, ``None`` without an ensemble), ``median_dynamics_gap`` (how far the first plans'
    virtual states were from their rollout, in step lengths: :attr:`Episode.dynamics_gap
    <torchrl_grasp.benchmark.episodes.Episode>`; ``None`` for planners that return no plan),
    ``iterations_per_plan`` (what a deadline allowed, under ``--budget``),
    ``second_success_rate`` and ``second_success_interval`` (the tier's second success test,
    :attr:`Episode.second_success <torchrl_grasp.benchmark.episodes.Episode>`; ``None`` without
    one), plus ``extra``.

    Examples:
        >>> episodes = [Episode(True, 2.0, 1, 600, 0.01, 0.03, 0.02),
        ...             Episode(False, 3.0, 1, 900, 0.2, 0.4, 0.1)]
        >>> record = summarise("walldoor", 60, "grasp", "open-loop", episodes, budget_s=None)
        >>> record["success_rate"], record["median_time_to_success_s"], record["seconds_per_plan"]
        (0.5, 2.0, 2.5)
        >>> record["model_calls_per_plan"], record["predicted_success_rate"], record["budget_s"]
        (750.0, 0.5, None)
        >>> [round(x, 2) for x in record["success_interval"]], record["time_to_success_iqr"]
        ([0.09, 0.91], [2.0, 2.0])
    """
    successes = [e for e in episodes if e.success]
    plans = sum(e.plans for e in episodes)
    predicted = (
        None
        if success_threshold is None or any(e.predicted_distance is None for e in episodes)
        else sum(e.predicted_distance < success_threshold for e in episodes) / len(episodes)
    )
    seconds = [e.second_success for e in episodes]
    second = None if None in seconds else sum(seconds)
    return dict(
        env=env,
        horizon=horizon,
        planner=planner,
        mode=mode,
        episodes=len(episodes),
        success_rate=len(successes) / len(episodes),
        median_time_to_success_s=statistics.median(e.plan_seconds for e in successes) if successes else None,
        seconds_per_plan=sum(e.plan_seconds for e in episodes) / plans,
        model_calls_per_plan=sum(e.model_calls for e in episodes) / plans,
        predicted_success_rate=predicted,
        median_model_error=statistics.median(e.model_error for e in episodes),
        median_final_distance=statistics.median(e.final_distance for e in episodes),
        success_interval=list(wilson_interval(len(successes), len(episodes))),
        time_to_success_iqr=_listed(quartiles([e.plan_seconds for e in successes])),
        model_transitions_per_plan=sum(e.model_transitions for e in episodes) / plans,
        median_plan_penalty=_median_of([e.predicted_penalty for e in episodes]),
        median_dynamics_gap=_median_of([e.dynamics_gap for e in episodes]),
        iterations_per_plan=sum(e.iterations for e in episodes) / plans,
        second_success_rate=None if second is None else second / len(episodes),
        second_success_interval=None if second is None else list(wilson_interval(second, len(episodes))),
        **extra,
    )


def separated_best(rows: Sequence[dict]) -> dict | None:
    """The record whose success interval lies above every other's (a win), or ``None`` where the
    intervals of the best and another overlap.

    Examples:
        >>> cell = lambda name, low, high: {"planner": name, "success_interval": (low, high)}
        >>> separated_best([cell("icem", 0.7, 0.95), cell("grasp", 0.1, 0.4)])["planner"]
        'icem'
        >>> separated_best([cell("icem", 0.5, 0.9), cell("grasp", 0.3, 0.6)]) is None
        True
    """
    if len(rows) < 2:
        return None
    best = max(rows, key=lambda r: r["success_interval"][0])
    others = [r for r in rows if r is not best]
    return best if all(best["success_interval"][0] > r["success_interval"][1] for r in others) else None


def markdown(records: Sequence[dict]) -> str:
    """The paper's table per (env, mode, budget): a row per horizon, a column per planner,
    ``success % / median time to success``; then the cost per plan and the model's part.

    Examples:
        >>> episodes = [Episode(True, 2.0, 1, 600, 0.01, 0.03, 0.02),
        ...             Episode(False, 3.0, 1, 900, 0.2, 0.4, 0.1)]
        >>> records = [summarise("walldoor", 60, name, "open-loop", episodes) for name in ("grasp", "cem")]
        >>> print(markdown(records))
        ### walldoor, open-loop, published settings
        <BLANKLINE>
        Success rate [95% Wilson interval] / median planning time to success (quartiles); bold: a win, the one cell whose interval lies above every other's:
        <BLANKLINE>
        | H | grasp | cem |
        |---:|---|---|
        | 60 | 50% [9%–91%] / 2.00 s (2.00–2.00) | 50% [9%–91%] / 2.00 s (2.00–2.00) |
        <BLANKLINE>
        Per plan: seconds / batched world-model calls / transitions evaluated; in the model: predicted success, median model error along the executed path:
        <BLANKLINE>
        | H | planner | s/plan | calls/plan | evaluations/plan | predicted success | model error |
        |---:|---|---:|---:|---:|---:|---:|
        | 60 | grasp | 2.50 | 750 | 0 | 50% | 0.060 |
        | 60 | cem | 2.50 | 750 | 0 | 50% | 0.060 |
        <BLANKLINE>
    """
    lines = []
    groups = sorted({(r["env"], r["mode"], r.get("budget_s")) for r in records}, key=str)
    for env, mode, budget in groups:
        rows = [r for r in records if (r["env"], r["mode"], r.get("budget_s")) == (env, mode, budget)]
        planners = list(dict.fromkeys(r["planner"] for r in rows))
        horizons = sorted({r["horizon"] for r in rows})
        setting = f"matched budget {budget:g} s per plan" if budget else "published settings"
        lines += [f"### {env}, {mode}, {setting}", ""]
        lines += [
            "Success rate [95% Wilson interval] / median planning time to success (quartiles); bold: a win, "
            "the one cell whose interval lies above every other's:",
            "",
        ]
        lines += ["| H | " + " | ".join(planners) + " |", "|---:|" + "---|" * len(planners)]
        cell = {(r["horizon"], r["planner"]): r for r in rows}
        winners = {h: separated_best([r for r in rows if r["horizon"] == h]) for h in horizons}
        for h in horizons:
            entries = []
            for p in planners:
                r = cell.get((h, p))
                if r is None:
                    entries.append("")
                    continue
                entries.append(_cell(r, bold=r is winners.get(h)))
            lines.append(f"| {h} | " + " | ".join(entries) + " |")
        lines += _second_test_table(rows, planners, horizons)
        ensemble = any(r.get("median_plan_penalty") is not None for r in rows)
        gaps = any(r.get("median_dynamics_gap") is not None for r in rows)
        lines += ["", "Per plan: seconds / batched world-model calls / transitions evaluated; in the model: predicted "
                  "success, median model error along the executed path"
                  + (", median ensemble disagreement summed along the first plan" if ensemble else "")
                  + (", median dynamics gap of the first plan (virtual states to rollout, in step lengths)" if gaps else "")
                  + ":", ""]
        lines += [
            "| H | planner | s/plan | calls/plan | evaluations/plan | predicted success | model error |"
            + (" plan disagreement |" if ensemble else "") + (" dynamics gap |" if gaps else ""),
            "|---:|---|---:|---:|---:|---:|---:|" + ("---:|" if ensemble else "") + ("---:|" if gaps else ""),
        ]
        for h in horizons:
            for p in planners:
                r = cell.get((h, p))
                if r is not None:
                    predicted = r["predicted_success_rate"]
                    predicted = "—" if predicted is None else f"{predicted:.0%}"
                    disagreement, gap = r.get("median_plan_penalty"), r.get("median_dynamics_gap")
                    lines.append(
                        f"| {h} | {p} | {r['seconds_per_plan']:.2f} | {r['model_calls_per_plan']:.0f} "
                        f"| {r.get('model_transitions_per_plan', 0):.0f} | {predicted} | {r['median_model_error']:.3f} |"
                        + ((" — |" if disagreement is None else f" {disagreement:.2f} |") if ensemble else "")
                        + ((" — |" if gap is None else f" {gap:.2f} |") if gaps else "")
                    )
        lines.append("")
    return "\n".join(lines)


def _second_test_table(rows: Sequence[dict], planners: Sequence[str], horizons: Sequence[int]) -> list[str]:
    """The rows' success by the tier's second test (``second_test`` names it), a row per horizon;
    nothing where the rows have none."""
    named = [r for r in rows if r.get("second_success_rate") is not None]
    if not named:
        return []
    lines = ["", f"Success by {named[0]['second_test']} [95% Wilson interval], at each episode's end:", ""]
    lines += ["| H | " + " | ".join(planners) + " |", "|---:|" + "---|" * len(planners)]
    cell = {(r["horizon"], r["planner"]): r for r in named}
    for h in horizons:
        entries = []
        for p in planners:
            r = cell.get((h, p))
            low, high = (None, None) if r is None else r["second_success_interval"]
            entries.append("" if r is None else f"{r['second_success_rate']:.0%} [{low:.0%}–{high:.0%}]")
        lines.append(f"| {h} | " + " | ".join(entries) + " |")
    return lines


def _cell(record: dict, *, bold: bool = False) -> str:
    """``44% [23–67] / 0.71 s (0.52–0.93)``: the success rate, its interval, the time to success."""
    low, high = record.get("success_interval", (None, None))
    interval = "" if low is None else f" [{low:.0%}–{high:.0%}]"
    rate = f"{record['success_rate']:.0%}{interval}"
    rate = f"**{rate}**" if bold else rate
    if record["median_time_to_success_s"] is None:
        return f"{rate} / —"
    quartile = record.get("time_to_success_iqr")
    spread = "" if quartile is None else f" ({quartile[0]:.2f}–{quartile[1]:.2f})"
    return f"{rate} / {record['median_time_to_success_s']:.2f} s{spread}"


def write(records: Sequence[dict], out: Path, header: str = "", *, figure: bool = True) -> str:
    """Writes ``results.json``, ``results.md`` and (with ``figure``) ``results.png`` under ``out``;
    returns the markdown. The benchmark writes the first two after every finished cell, so a crash
    loses at most the cell it was in.

    Examples:
        >>> import tempfile
        >>> episodes = [Episode(True, 2.0, 1, 600, 0.0, 0.03, 0.02)]
        >>> records = [summarise("walldoor", 60, "grasp", "open-loop", episodes)]
        >>> with tempfile.TemporaryDirectory() as directory:
        ...     text = write(records, Path(directory) / "out")
        ...     names = sorted(path.name for path in (Path(directory) / "out").iterdir())
        ...     saved = json.loads((Path(directory) / "out" / "results.json").read_text())
        >>> names, saved == records, text.splitlines()[0]
        (['results.json', 'results.md', 'results.png'], True, '### walldoor, open-loop, published settings')
    """
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(list(records), indent=2))
    text = header + markdown(records)
    (out / "results.md").write_text(text)
    if figure:
        plot(records, out / "results.png")
    return text


def plot(records: Sequence[dict], path: Path) -> None:
    """Success rate vs horizon and median time to success vs horizon, a line per planner,
    a row of panels per (env, mode, budget).

    Examples:
        >>> import tempfile
        >>> episodes = [Episode(True, 2.0, 1, 600, 0.0, 0.03, 0.02)]
        >>> records = [summarise("walldoor", h, "grasp", mode, episodes)
        ...            for h in (20, 40) for mode in ("open-loop", "mpc")]
        >>> with tempfile.TemporaryDirectory() as directory:
        ...     plot(records, Path(directory) / "results.png")
        ...     header = (Path(directory) / "results.png").read_bytes()[:4]
        >>> header  # two rows of panels: open-loop and mpc
        b'\x89PNG'
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = sorted({(r["env"], r["mode"], r.get("budget_s")) for r in records}, key=str)
    figure, axes = plt.subplots(len(groups), 2, figsize=(10, 3.6 * len(groups)), squeeze=False)
    for (env, mode, budget), (success_axis, time_axis) in zip(groups, axes):
        rows = [r for r in records if (r["env"], r["mode"], r.get("budget_s")) == (env, mode, budget)]
        title = f"{env}, {mode}" + (f", budget {budget:g} s" if budget else "")
        for planner in dict.fromkeys(r["planner"] for r in rows):
            mine = sorted((r for r in rows if r["planner"] == planner), key=lambda r: r["horizon"])
            horizons = [r["horizon"] for r in mine]
            success_axis.plot(horizons, [100 * r["success_rate"] for r in mine], marker="o", label=planner)
            timed = [r for r in mine if r["median_time_to_success_s"] is not None]
            time_axis.plot(
                [r["horizon"] for r in timed], [r["median_time_to_success_s"] for r in timed], marker="o", label=planner
            )
        success_axis.set(title=title, xlabel="horizon H", ylabel="success (%)", ylim=(-5, 105))
        time_axis.set(title=title, xlabel="horizon H", ylabel="median time to success (s)", yscale="log")
        success_axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _median_of(values: Sequence[float | None]) -> float | None:
    """The median of ``values``; ``None`` where any of them is (a measure some episodes lack)."""
    return None if any(value is None for value in values) else statistics.median(values)


def _listed(pair: tuple[float, float] | None) -> list[float] | None:
    """A pair as the list that JSON gives back."""
    return None if pair is None else list(pair)
