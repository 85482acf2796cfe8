"""`descend tour`: every section of the crash course run as a notebook, into one HTML page that reads like a course."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from descend.cli.options import section_numbers
from descend.errors import DescendError


@click.command()
@click.option("--full", is_flag=True, help="Run each section on its full data (minutes to hours) instead of quickly.")
@click.option("--sections", "numbers", default=None, callback=section_numbers,
              help="Only these sections, e.g. 1,5,13 (default: all).")
@click.option("--examples", "examples_dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="The folder of the course's NN_*.py scripts (default: examples/ of this checkout).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="runs/tour", show_default=True)
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Print each section's result as a JSON line.")
def tour(full: bool, numbers: list[int] | None, examples_dir: str | None, out_dir: str, quiet: bool,
         as_json: bool) -> None:
    """Run every section of the crash course as a notebook and write one HTML page of it: OUT/report.html.

    Each section's explanation, its code (folded), what it printed and its pictures, embedded, with a
    table of contents; a failed section is marked FAILED with its error (and the command exits 1).
    Each executed notebook is kept as OUT/NN/NN_name.ipynb. Needs the notebook tools:
    pip install 'descend[notebook]'.

    Example: descend tour --sections 1,5 --out runs/tour && open runs/tour/report.html
    """
    from tqdm import tqdm

    from descend.tour import EXAMPLES, find_sections, run_tour

    examples = Path(examples_dir) if examples_dir else EXAMPLES
    try:
        count = len(find_sections(examples, numbers))
    except DescendError as error:
        raise click.UsageError(str(error)) from None
    with tqdm(total=count, unit="section", disable=quiet or as_json) as bar:
        def done(section: Any) -> None:
            bar.set_postfix_str(f"{section.number:02d} {'ran' if section.ok else 'FAILED'}")
            bar.update()
            if as_json:
                click.echo(json.dumps({"section": section.number, "title": section.title, "ok": section.ok,
                                       "error": section.error, "seconds": round(section.seconds, 2),
                                       "pictures": [str(picture) for picture in section.pictures],
                                       "notebook": str(section.notebook)}))

        sections, report = run_tour(Path(out_dir), quick=not full, numbers=numbers, examples=examples,
                                    on_section=done)
    failed = [section for section in sections if not section.ok]
    if not as_json:
        click.echo(f"{len(sections) - len(failed)} of {len(sections)} sections ran; report: {report}")
    if failed:
        raise DescendError(f"section {', '.join(str(s.number) for s in failed)} failed; the report shows the errors")
