"""The crash course's tour: run every section of examples/ and gather its figures and pictures in one HTML page.

Each section is a percent-cell script (examples/NN_name.py) that prints its figures and writes
PNG pictures to $DESCEND_OUT. The tour runs each in its own Python process, with
DESCEND_QUICK=1 in the quick mode, keeps what it printed and drew, and writes report.html with
every picture embedded, so the page can be mailed or opened anywhere.
"""

from __future__ import annotations

import base64
import html
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from descend.errors import DescendValueError
from descend.files import write_atomically

#: where the sections live in a checkout of descend (an editable install finds them here)
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
_SECTION = re.compile(r"^(\d\d)_[a-z0-9_]+\.py$")


@dataclass
class Section:
    """One section of the course, and what running it gave: its output, pictures and how long it took."""

    number: int
    script: Path
    title: str
    output: str = ""
    pictures: list[Path] = field(default_factory=list)
    seconds: float = 0.0
    ok: bool = False


def find_sections(examples: Path = EXAMPLES, numbers: Sequence[int] | None = None) -> list[Section]:
    """The sections in `examples` (NN_name.py), in order; only those `numbers` when given."""
    if not examples.is_dir():
        raise DescendValueError(f"no examples folder at {examples}; pass the folder of the course's NN_*.py scripts")
    sections = [Section(int(script.name[:2]), script, _title(script)) for script in sorted(examples.iterdir())
                if _SECTION.match(script.name)]
    if numbers is not None:
        known = {section.number for section in sections}
        unknown = sorted(set(numbers) - known)
        if unknown:
            raise DescendValueError(f"no section {', '.join(map(str, unknown))}; the sections are "
                                    f"{', '.join(map(str, sorted(known)))}")
        sections = [section for section in sections if section.number in set(numbers)]
    return sections


def _title(script: Path) -> str:
    """The first markdown heading of a percent-cell script: '# # 4. Why go deep: two moons'."""
    for line in script.read_text(encoding="utf-8").splitlines():
        if line.startswith("# # "):
            return line[4:].strip()
    return script.stem


def run_section(section: Section, out: Path, quick: bool = True, timeout: float = 1800) -> Section:
    """Run one section's script in a fresh Python, its pictures going to out/NN; fills in the section."""
    folder = out / f"{section.number:02d}"
    folder.mkdir(parents=True, exist_ok=True)
    environment = {**os.environ, "DESCEND_OUT": str(folder), "MPLBACKEND": "Agg"}
    environment["DESCEND_QUICK"] = "1" if quick else "0"
    started = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, str(section.script)], env=environment, capture_output=True,
                              text=True, timeout=timeout)
        section.ok = done.returncode == 0
        section.output = done.stdout if section.ok else done.stdout + "\n" + done.stderr[-4000:]
    except subprocess.TimeoutExpired as expired:
        section.output = f"stopped after {timeout:.0f} s\n{expired.stdout or ''}"
    section.seconds = time.perf_counter() - started
    section.pictures = sorted(folder.glob("*.png"))
    return section


def run_tour(out: Path, quick: bool = True, numbers: Sequence[int] | None = None, examples: Path = EXAMPLES,
             on_section: Callable[[Section], None] | None = None) -> tuple[list[Section], Path]:
    """Run the sections (all, or `numbers`), then write out/report.html; (the sections, the report's path).

    `on_section(section)` is called after each section, e.g. to advance a progress bar.
    """
    sections = find_sections(examples, numbers)
    for section in sections:
        run_section(section, out, quick)
        if on_section is not None:
            on_section(section)
    report = out / "report.html"
    page = render_report(sections, quick).encode("utf-8")
    write_atomically(report, lambda stream: stream.write(page))
    return sections, report


def render_report(sections: Sequence[Section], quick: bool) -> str:
    """The tour as one HTML page: per section its title, status, time, printed output and pictures inline."""
    mode = "quick mode (DESCEND_QUICK=1: small data, few epochs)" if quick else "full mode"
    failed = [section for section in sections if not section.ok]
    summary = (f"{len(sections)} sections in {sum(s.seconds for s in sections):.0f} s, {mode}; "
               + (f"{len(failed)} failed: {', '.join(str(s.number) for s in failed)}" if failed else "all ran"))
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>descend: the crash course</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
             "pre{background:#f6f6f6;padding:.8em;overflow-x:auto;font-size:12px}"
             "img{max-width:100%;border:1px solid #ddd;margin:.4em 0}.failed{color:#b00}"
             "nav a{margin-right:1em}</style></head><body>",
             "<h1>descend: the crash course</h1>", f"<p>{html.escape(summary)}</p><nav>"]
    parts += [f"<a href='#s{s.number}'>{s.number}</a>" for s in sections]
    parts.append("</nav>")
    for section in sections:
        status = "ran" if section.ok else "<span class='failed'>FAILED</span>"
        parts.append(f"<h2 id='s{section.number}'>{html.escape(section.title)}</h2>"
                     f"<p>{status} in {section.seconds:.1f} s &middot; <code>{html.escape(section.script.name)}</code>"
                     "</p>")
        parts.append(f"<pre>{html.escape(section.output.strip())}</pre>")
        for picture in section.pictures:
            encoded = base64.b64encode(picture.read_bytes()).decode("ascii")
            parts.append(f"<figure><img alt='{html.escape(picture.stem)}' src='data:image/png;base64,{encoded}'>"
                         f"<figcaption>{html.escape(picture.name)}</figcaption></figure>")
    parts.append("</body></html>")
    return "\n".join(parts)
