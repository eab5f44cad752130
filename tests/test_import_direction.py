"""Imports point one way (issue 12): shared layers below, methods on top of them, apps (the explorer) and CLIs on
top of everything.

Every module of the package is parsed (not imported), and each `import` / `from ... import` of a tf_gadn module,
at module level or inside a function, is checked against the layer rules below."""

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "tf_gadn"
METHODS = ("gadn", "style_space", "stargan")
APPS = (
    "explorer",
)  # packages on top of the library: they may import any layer but a CLI, and nothing imports them
# Top-level modules that are `python -m tf_gadn.X` commands (everything at the top but losses).
LIBRARY_TOP = ("losses",)


def module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: pathlib.Path) -> set[str]:
    """tf_gadn modules `path` imports (for `from pkg import name`, pkg.name when that is a module, else pkg)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("tf_gadn"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tf_gadn"):
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                as_path = PACKAGE.parent.joinpath(*candidate.split("."))
                found.add(
                    candidate
                    if as_path.with_suffix(".py").exists() or as_path.is_dir()
                    else node.module
                )
    return found


def layer(module: str) -> str:
    """data, nn, losses | evaluation | training | serving | a method's name | an app's name | cli | package."""
    parts = module.split(".")
    if len(parts) == 1:
        return "package"
    if len(parts) == 2 and parts[1] not in (
        "data",
        "nn",
        "evaluation",
        "training",
        "serving",
        *METHODS,
        *APPS,
    ):
        return parts[1] if parts[1] in LIBRARY_TOP else "cli"
    return parts[1]


# layer -> layers it must never import
FORBIDDEN = {
    "data": {"evaluation", "training", "serving", "cli", *METHODS, *APPS},
    "nn": {"data", "evaluation", "training", "serving", "cli", *METHODS, *APPS},
    "losses": {"data", "nn", "evaluation", "training", "serving", "cli", *METHODS, *APPS},
    "evaluation": {"training", "serving", "cli", *METHODS, *APPS},
    "training": {"serving", "cli", *METHODS, *APPS},
    "serving": {"cli", *METHODS, *APPS},
    **{m: {"cli", *APPS, *(other for other in METHODS if other != m)} for m in METHODS},
    **{a: {"cli", *(other for other in APPS if other != a)} for a in APPS},
}

MODULES = sorted(PACKAGE.rglob("*.py"))


def test_every_module_is_checked():
    assert len(MODULES) > 40
    assert {layer(module_name(p)) for p in MODULES} >= {
        "data",
        "nn",
        "losses",
        "training",
        "serving",
        "cli",
        *METHODS,
        *APPS,
    }


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_imports_point_one_way(path):
    here = layer(module_name(path))
    wrong = sorted(m for m in imported_modules(path) if layer(m) in FORBIDDEN.get(here, set()))
    assert not wrong, f"{module_name(path)} ({here}) must not import {wrong}"


def test_server_does_not_import_the_client():
    assert "tf_gadn.serving.client" not in imported_modules(PACKAGE / "serving" / "server.py")
