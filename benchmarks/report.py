"""The benchmark suite's figures as a page: docs/benchmarks.md and docs/benchmark_ratios.png.

    python benchmarks/suite.py --full --json runs/bench.json
    python benchmarks/report.py runs/bench.json [--out docs] [--notes benchmarks/notes.md]

The page holds the suite's table, the machine, the date and the command that made the figures, then the
notes (what the figures owe to what, what was tried where a target is missed, runs outside the suite):
written by hand, kept in benchmarks/notes.md so that a new table never loses them. The plot: one bar per
workload, descend's time over torch's with each workload's target marked.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from suite import HEADERS, table_rows

from descend.files import write_text

#: docs/ of this checkout
DOCS = Path(__file__).resolve().parents[1] / "docs"
#: the page's hand-written part, beside this script
NOTES = Path(__file__).resolve().parent / "notes.md"
PAGE, PLOT = "benchmarks.md", "benchmark_ratios.png"


def time_ratio(summary: Mapping[str, Any]) -> tuple[float, float] | None:
    """(descend's time / torch's, the target for that ratio) of one workload; None without a torch side.

    A workload judged by characters per second has its ratio and bound turned over: 0.8x torch's
    characters per second is 1.25x torch's time.
    """
    if "error" in summary or summary["ratio"] is None:
        return None
    ratio, bound = summary["ratio"], summary["target"]["bound"]
    return (1 / ratio, 1 / bound) if summary["higher_is_better"] else (ratio, bound)


def markdown_table(results: Mapping[str, Any]) -> str:
    """The suite's table in Markdown."""
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in table_rows(results)]
    return "\n".join(lines)


def page(results: Mapping[str, Any], notes: str = "") -> str:
    """docs/benchmarks.md: the table, how to read it, the machine, the date and the command, then `notes`."""
    machine, settings = results["machine"], results["settings"]
    versions = ", ".join(f"{name} {version}" for name, version in machine["versions"].items() if version)
    fixed = [name for name, summary in results["workloads"].items()
             if "error" not in summary and summary["target"]["figure"] == "fixed_seconds"]
    return "\n".join([
        "# Benchmarks: descend against PyTorch",
        "",
        f"Measured on {results['date']} with `{results['command']}` "
        f"(--{settings['mode']}, {settings['rounds']} alternating rounds, medians; {settings['threads']} threads a side; "
        f"descend's kernels: {settings['kernels'] or 'its default'}). Each side ran in its own process. "
        "Made into this page by `python benchmarks/report.py`.",
        "",
        markdown_table(results),
        "",
        "The ratio is descend's time per step over torch's (lower is better), except where it says chars/s: "
        "descend's characters per second over torch's (higher is better)."
        + (f" {', '.join(fixed)}: a fixed target on descend's time per step, no torch twin." if fixed else ""),
        "",
        f"![descend's time over torch's, per workload, with each target]({PLOT})",
        "",
        "## Machine",
        "",
        f"- processor: {machine['cpu']}, {machine['cores']} cores",
        f"- Python {machine['python']}; {versions}",
        f"- {machine['blas']}",
        "",
        *([notes.strip(), ""] if notes.strip() else []),
    ])


def plot_ratios(results: Mapping[str, Any], path: str | Path) -> Path:
    """A bar per workload of descend's time over torch's, its target marked; written as a PNG at `path`."""
    from descend.viz import new_figure, save_figure

    bars = {name: found for name, summary in results["workloads"].items() if (found := time_ratio(summary))}
    figure = new_figure(max(4.0, 0.9 * len(bars) + 2), 4)
    axes = figure.add_subplot(1, 1, 1)
    positions = range(len(bars))
    ratios = [ratio for ratio, _ in bars.values()]
    colors = ["tab:green" if results["workloads"][name]["met"] else "tab:red" for name in bars]
    axes.bar(positions, ratios, color=colors, width=0.6)
    axes.scatter(positions, [bound for _, bound in bars.values()], marker="_", s=900, color="black", zorder=3,
                 label="target (at most)")
    axes.axhline(1.0, color="gray", linestyle=":", linewidth=1)
    axes.set_xticks(list(positions), list(bars), rotation=30, ha="right")
    axes.set_ylabel("descend time / torch time")
    axes.set_title("descend against PyTorch: time per training step (lower is better)")
    axes.legend(loc="upper left")
    return save_figure(figure, path)


def main(arguments: list[str] | None = None) -> int:
    """Read the suite's JSON, write the page and the plot; the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", help="the file of `suite.py --json`")
    parser.add_argument("--out", default=str(DOCS), help="the folder of the page and the plot [default: docs/]")
    parser.add_argument("--notes", default=str(NOTES), help="Markdown to end the page with [default: %(default)s]")
    args = parser.parse_args(arguments)
    results = json.loads(Path(args.results).read_text())
    notes = Path(args.notes).read_text() if Path(args.notes).is_file() else ""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / PAGE, page(results, notes))
    plot_ratios(results, out / PLOT)
    print(f"wrote {out / PAGE} and {out / PLOT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
