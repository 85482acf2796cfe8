"""The crash course's tour: every section of examples/ run as a notebook, into one page that reads like the course.

Each section is a percent-cell script (examples/NN_name.py): markdown cells that explain, code
cells that compute, print their figures and save PNG pictures to $DESCEND_OUT. The tour opens each
script as a notebook (jupytext) and runs it in a fresh kernel of this Python (nbclient), started in
the script's folder, with DESCEND_QUICK=1 in the quick mode and DESCEND_OUT=out/NN. Every PNG a
code cell saves becomes one of that cell's outputs, so the picture sits under the code that drew
it. The executed notebook is kept as out/NN/NN_name.ipynb, and nbconvert renders all the sections
into one page, out/report.html: a table of contents, then each section's explanation, its code
folded, what it printed and its pictures, embedded, so the page can be mailed or opened anywhere,
with no network. A section that fails is on the page too, marked FAILED with its error; the cells
after the error are shown as they are, unrun.
"""

from __future__ import annotations

import base64
import html
import importlib.util
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from descend.errors import DescendValueError
from descend.files import write_atomically

#: where the sections live in a checkout of descend (an editable install finds them here)
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
_SECTION = re.compile(r"^(\d\d)_[a-z0-9_]+\.py$")
_PAGE_TITLE = "descend: the crash course"

# nbconvert's JupyterLab page, less its scripts (require.js, MathJax, mermaid, each fetched from a CDN): the
# course's prose has no TeX and its outputs no widgets, and the page must open offline. Each code cell's input
# folds under a "code" summary, so the page reads as prose, output and pictures first. A picture's alternative
# text is its text/plain form: the file's name for a section's PNGs.
_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{% block extra_css %}
<style type="text/css">
main { max-width: 1100px; margin: 0 auto; }
details.descend-code > summary { cursor: pointer; color: var(--jp-ui-font-color2);
  font: var(--jp-ui-font-size1) var(--jp-ui-font-family); padding: 2px 0 2px var(--jp-cell-prompt-width); }
.descend-status { color: var(--jp-ui-font-color2); border-top: 1px solid var(--jp-border-color2);
  margin-top: 2em; padding-top: 0.4em; }
.descend-failed { color: #b00; font-weight: bold; }
</style>
{% endblock extra_css %}
{% block data_png scoped -%}
<div class="jp-RenderedImage jp-OutputArea-output">
<img src="data:image/png;base64,{{ output.data['image/png'] | escape_html }}"
     alt="{{ output.data.get('text/plain', 'a picture') | escape_html }}">
</div>
{%- endblock data_png %}
{% block input_group -%}
<details class="descend-code"><summary>code</summary>
{{ super() }}
</details>
{%- endblock input_group %}
"""


@dataclass
class Section:
    """One section of the course, and what running it gave: its output, pictures, notebook and time."""

    number: int
    script: Path
    title: str
    output: str = ""  # what its cells printed, then its error if it failed
    pictures: list[Path] = field(default_factory=list)
    seconds: float = 0.0
    ok: bool = False
    error: str = ""  # why it failed, e.g. "ZeroDivisionError: division by zero"; empty when it ran
    notebook: Path | None = None  # the executed notebook, out/NN/NN_name.ipynb


def find_sections(examples: Path = EXAMPLES, numbers: Sequence[int] | None = None) -> list[Section]:
    """The sections in `examples` (NN_name.py), in order; only those `numbers` when given.

    >>> [section.title for section in find_sections(numbers=[1, 5])]
    ['1. A line fitted by gradient descent', '5. The chain rule and backpropagation']
    """
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


def _check_notebook_tools() -> None:
    """Refuse early, naming what is missing, when the `notebook` extra is not installed."""
    missing = [name for name in ("jupytext", "nbclient", "nbconvert", "ipykernel")
               if importlib.util.find_spec(name) is None]
    if missing:
        raise ImportError(f"descend tour runs each section as a notebook and needs {', '.join(missing)}: "
                          "pip install 'descend[notebook]'")


class _PicturesByCell:
    """Shows each PNG a section saves under the code cell that saved it, as one of that cell's outputs.

    The sections draw on their own Agg canvases and save files (they run as plain scripts too), so no
    figure reaches the kernel's display: the folder is compared before and after each cell instead.
    """

    def __init__(self, folder: Path):
        self.folder = folder
        self.seen = self._stamps()  # pictures of an earlier run in the same folder are not this run's
        self.shown: list[Path] = []
        self.cell: Any = None

    def _stamps(self) -> dict[Path, tuple[int, int, int]]:
        stamps = {}
        for picture in self.folder.glob("*.png"):
            status = picture.stat()
            stamps[picture] = (status.st_mtime_ns, status.st_size, status.st_ino)
        return stamps

    def cell_started(self, cell: Any, **_: Any) -> None:
        self.cell = cell

    def cell_done(self, **_: Any) -> None:
        """Attach what changed in the folder since the last look to the cell that ran last."""
        import nbformat

        stamps = self._stamps()
        changed = sorted(picture for picture, stamp in stamps.items() if self.seen.get(picture) != stamp)
        self.seen = stamps
        if self.cell is None:
            return
        for picture in changed:
            encoded = base64.b64encode(picture.read_bytes()).decode("ascii")
            self.cell.outputs.append(nbformat.v4.new_output(
                "display_data", data={"image/png": encoded, "text/plain": picture.name}))
            if picture not in self.shown:
                self.shown.append(picture)


def run_section(section: Section, out: Path, quick: bool = True, timeout: int = 1800) -> Section:
    """Run one section as a notebook in a fresh kernel, its pictures going to out/NN; fills in the section.

    `timeout` is in seconds per cell. The executed notebook, with every picture among its outputs,
    is written to out/NN/NN_name.ipynb; the kernel's own log (not the cells' output) to out/NN/kernel.log.
    """
    _check_notebook_tools()
    import jupytext
    import nbformat
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    folder = (out / f"{section.number:02d}").resolve()
    folder.mkdir(parents=True, exist_ok=True)
    notebook = jupytext.read(section.script)
    pictures = _PicturesByCell(folder)
    # This Python's own ipykernel (kernel_dirs=[] skips the user's kernelspecs): a kernel named python3
    # installed elsewhere may be another Python, without this descend.
    kernel = AsyncKernelManager(kernel_name="python3", kernel_spec_manager=KernelSpecManager(kernel_dirs=[]))
    client = NotebookClient(notebook, km=kernel, timeout=timeout,
                            resources={"metadata": {"path": str(section.script.parent)}},
                            on_cell_execute=pictures.cell_started, on_cell_executed=pictures.cell_done)
    environment = {**os.environ, "DESCEND_OUT": str(folder), "DESCEND_QUICK": "1" if quick else "0"}
    started = time.perf_counter()
    with open(folder / "kernel.log", "wb") as log:
        try:
            client.execute(env=environment, stderr=log)
            section.ok = True
        except CellExecutionError as error:
            section.error = f"{error.ename}: {error.evalue}"
        except CellTimeoutError:
            section.error = f"a cell ran past {timeout:.0f} s"
        except RuntimeError as error:  # nbclient's DeadKernelError, or jupyter_client's kernel that never started
            section.error = f"the kernel stopped: {error}; its log is {folder / 'kernel.log'}"
    section.seconds = time.perf_counter() - started
    pictures.cell_done()  # a cell stopped by a timeout or a dead kernel is not reported as executed
    section.pictures = pictures.shown
    printed = [output.get("text", "") for cell in notebook.cells for output in cell.get("outputs", [])
               if output.output_type == "stream" and output.name == "stdout"]
    section.output = "".join(printed) + (f"\n{section.error}\n" if section.error else "")
    section.notebook = folder / f"{section.script.stem}.ipynb"
    text = nbformat.writes(notebook).encode("utf-8")
    write_atomically(section.notebook, lambda stream: stream.write(text))
    return section


def run_tour(out: Path, quick: bool = True, numbers: Sequence[int] | None = None, examples: Path = EXAMPLES,
             on_section: Callable[[Section], None] | None = None) -> tuple[list[Section], Path]:
    """Run the sections (all, or `numbers`), then write out/report.html; (the sections, the report's path).

    `on_section(section)` is called after each section, e.g. to advance a progress bar.
    Example: ``sections, report = run_tour(Path("runs/tour"), numbers=[1, 5])``.
    """
    _check_notebook_tools()
    sections = find_sections(examples, numbers)
    for section in sections:
        run_section(section, out, quick)
        if on_section is not None:
            on_section(section)
    report = out / "report.html"
    page = render_report(sections, quick).encode("utf-8")
    write_atomically(report, lambda stream: stream.write(page))
    return sections, report


def _markdown_text(text: str) -> str:
    """`text` as literal markdown: what would be markup is escaped."""
    return re.sub(r"([\\`*_\[\]<>#|])", r"\\\1", text)


def render_report(sections: Sequence[Section], quick: bool) -> str:
    """The run sections as one HTML page: a table of contents, then each section's notebook, rendered by nbconvert.

    Each section is headed by a status line (its script, ran or FAILED with the error, its time),
    the anchor the contents link to. Example: ``render_report(run_tour(out)[0], quick=True)``.
    """
    _check_notebook_tools()
    import nbformat
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    mode = "quick mode (DESCEND_QUICK=1: small data, few epochs)" if quick else "full mode"
    failed = [section for section in sections if not section.ok]
    summary = (f"{len(sections)} section{'s' * (len(sections) != 1)} in {sum(s.seconds for s in sections):.0f} s, "
               f"{mode}; "
               + (f"{len(failed)} FAILED: {', '.join(str(s.number) for s in failed)}" if failed else "all ran"))
    contents = [f"- [{_markdown_text(s.title)}](#section-{s.number:02d})"
                + ("" if s.ok else " **FAILED**") for s in sections]
    cells = [nbformat.v4.new_markdown_cell(f"# {_PAGE_TITLE}\n\n{summary}.\n\n" + "\n".join(contents))]
    for section in sections:
        status = (f"ran in {section.seconds:.1f} s" if section.ok else
                  f"<span class='descend-failed'>FAILED</span> after {section.seconds:.1f} s: "
                  f"<code>{html.escape(section.error)}</code>")
        cells.append(nbformat.v4.new_markdown_cell(
            f"<div class='descend-status' id='section-{section.number:02d}'><code>{html.escape(section.script.name)}"
            f"</code> &middot; {status}</div>"))
        if section.notebook is not None:
            cells += nbformat.read(section.notebook, as_version=4).cells
    page = nbformat.v4.new_notebook(cells=cells, metadata={
        "title": _PAGE_TITLE, "language_info": {"name": "python", "pygments_lexer": "ipython3"}})
    exporter = HTMLExporter(template_name="lab", extra_loaders=[DictLoader({"descend_tour.html.j2": _TEMPLATE})],
                            template_file="descend_tour.html.j2")
    body, _ = exporter.from_notebook_node(page)
    return body
