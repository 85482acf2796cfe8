"""docs/ARCHITECTURE.md keeps up with the code: every module of the package is named in it, and the layers it
describes hold (no module imports the package root; engines never import fit)."""

import ast
from pathlib import Path

ROOT = Path(__file__).parent.parent
PACKAGE = ROOT / "descend"


def modules():
    """Every module's path inside the package: 'training/loop.py', and 'hogwild/' for a package's __init__.py."""
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if relative.name == "__init__.py" and relative.parent != Path("."):
            yield f"{relative.parent.as_posix()}/"
        else:
            yield relative.as_posix()


def imports(path):
    """The modules a file imports, at any level (module or function), as dotted names.

    `from descend import ops` imports the module descend.ops; `from descend import fit` imports the root.
    """
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module == "descend":
            for alias in node.names:
                inside = (PACKAGE / alias.name).is_dir() or (PACKAGE / f"{alias.name}.py").is_file()
                yield f"descend.{alias.name}" if inside else "descend"
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module


def test_every_module_of_the_package_is_named_in_the_architecture_page():
    page = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    missing = [module for module in modules() if f"`{module}" not in page]
    assert missing == []


def test_no_module_imports_the_package_root_and_no_engine_imports_fit():
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path == PACKAGE / "__init__.py":  # the root gathers the public API
            continue
        for name in imports(path):
            if name == "descend" or (name == "descend.training.fit" and path.parent.name in ("hogwild", "spark")):
                offenders.append(f"{path.relative_to(ROOT)} imports {name}")
    assert offenders == []
