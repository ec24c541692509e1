"""Import guarantees: the order the deployment depends on, and the layering of the package.

The layering contract is checked statically: every module under a package is parsed with
`ast` and each import it names (plain, from-, relative, inside functions or under
TYPE_CHECKING, and importlib.import_module of a constant string) is matched against the
rules below. Dependencies flow one way: upstream knows nothing of HTTP serving, chat or
the dialects; chat knows no web framework, no dialect and not the accounts service above
it; the accounts service knows no web framework, dialect or serving module; dialects
never import each other; the simulator stands alone, so it can never agree with the gateway by sharing code.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
WEB_FRAMEWORKS: tuple[str, ...] = ("flask", "werkzeug")
DIALECTS: tuple[str, ...] = ("gateway.openai", "gateway.anthropic", "gateway.gemini")
SERVING: tuple[str, ...] = ("gateway.system", "gateway.web", "gateway.app")
ACCOUNTS = "gateway.accounts"


def test_reading_settings_imports_no_http_stack() -> None:
    # gunicorn.conf.py reads settings in the arbiter, before the gevent worker
    # monkey-patches: ssl/requests imported there would stay unpatched.
    code = "import sys, gateway.config; print(sorted(m for m in ('requests', 'ssl', 'urllib3', 'flask') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_upstream_package_imports_no_web_framework() -> None:
    code = "import sys, gateway.upstream.client, gateway.upstream.files; print('flask' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


LOAD_RULES: dict[str, tuple[str, ...]] = {
    "gateway.upstream": (*WEB_FRAMEWORKS, "gateway.chat", ACCOUNTS, *DIALECTS, *SERVING),
    "gateway.chat": (*WEB_FRAMEWORKS, ACCOUNTS, *DIALECTS),
    ACCOUNTS: (*WEB_FRAMEWORKS, *DIALECTS, *SERVING),
}


@pytest.mark.parametrize("package", LOAD_RULES)
def test_package_loads_nothing_forbidden(package: str) -> None:
    # The static rules below see direct imports; this sees what they pull in, transitively.
    code = (f"import importlib, pkgutil, sys, {package} as pkg\n"
            "for info in pkgutil.iter_modules(pkg.__path__, pkg.__name__ + '.'):\n"
            "    importlib.import_module(info.name)\n"
            f"print(sorted({{p for p in {LOAD_RULES[package]!r} for m in sys.modules"
            " if m == p or m.startswith(p + '.')}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", f"importing all of {package} loads {out.strip()}"


# --- The static checker ---------------------------------------------------------------------

@dataclass(frozen=True)
class Import:
    path: Path
    line: int
    name: str  # absolute dotted name of the imported module (or of a name in it)


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(module: str | None, level: int, importer: str, is_package: bool) -> str:
    if level == 0:
        return module or ""
    base = importer.split(".") if is_package else importer.split(".")[:-1]
    base = base[:len(base) - (level - 1)] if level > 1 else base
    return ".".join([*base, module] if module else base)


def imports_of(path: Path, root: Path) -> list[Import]:
    """Every module name `path` imports; `root` is the directory its package lives in."""
    importer, tree = module_name(path, root), ast.parse(path.read_text(), str(path))
    is_package = path.name == "__init__.py"
    found: list[Import] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [Import(path, node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(node.module, node.level, importer, is_package)
            found.append(Import(path, node.lineno, base))
            # `from gateway import openai` imports the module gateway.openai.
            found += [Import(path, node.lineno, f"{base}.{alias.name}" if base else alias.name)
                      for alias in node.names if alias.name != "*"]
        elif (isinstance(node, ast.Call) and _is_dynamic_import(node.func) and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            found.append(Import(path, node.lineno, node.args[0].value))
    return found


def _is_dynamic_import(func: ast.expr) -> bool:
    if isinstance(func, ast.Name):
        return func.id in ("__import__", "import_module")
    return isinstance(func, ast.Attribute) and func.attr == "import_module"


def _matches(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def violations(package: Path, forbidden: tuple[str, ...], root: Path = ROOT) -> list[str]:
    """Each import, by a module under `package`, of a module under a forbidden prefix."""
    assert package.is_dir(), package
    return sorted({f"{found.path.relative_to(root)}:{found.line}: {found.name}"
                   for path in package.rglob("*.py") for found in imports_of(path, root)
                   if any(_matches(found.name, prefix) for prefix in forbidden)})


# --- The contract ------------------------------------------------------------------------------

def test_upstream_imports_no_serving_chat_or_dialect() -> None:
    forbidden = (*WEB_FRAMEWORKS, "gateway.chat", ACCOUNTS, *DIALECTS, *SERVING)
    found = violations(ROOT / "gateway" / "upstream", forbidden)
    assert not found, "upstream must not import:\n" + "\n".join(found)


def test_chat_imports_no_web_framework_or_dialect() -> None:
    found = violations(ROOT / "gateway" / "chat", (*WEB_FRAMEWORKS, ACCOUNTS, *DIALECTS))
    assert not found, "chat must not import:\n" + "\n".join(found)


def test_accounts_imports_no_web_framework_dialect_or_serving() -> None:
    found = violations(ROOT / "gateway" / "accounts", (*WEB_FRAMEWORKS, *DIALECTS, *SERVING))
    assert not found, "accounts must not import:\n" + "\n".join(found)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_dialect_imports_no_other_dialect(dialect: str) -> None:
    others = tuple(other for other in DIALECTS if other != dialect)
    found = violations(ROOT / Path(*dialect.split(".")), others)
    assert not found, f"{dialect} must not import another dialect:\n" + "\n".join(found)


def test_simulator_imports_nothing_from_gateway() -> None:
    found = violations(ROOT / "tests" / "simulator", ("gateway",))
    assert not found, "the simulator must not import the gateway:\n" + "\n".join(found)


def test_checker_sees_every_form_of_import(tmp_path: Path) -> None:
    # A broken checker would pass the contract vacuously; this pins what it must catch.
    package = tmp_path / "gateway" / "upstream"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("from . import plain\n")
    (package / "plain.py").write_text("import flask\nimport os\n")
    (package / "relative.py").write_text("from ..chat import service\nfrom .plain import x\n")
    (package / "late.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from gateway import openai\n"
        "def load():\n    import importlib\n    return importlib.import_module('werkzeug.http')\n")
    found = violations(package, ("flask", "werkzeug", "gateway.chat", "gateway.openai"), tmp_path)
    assert found == ["gateway/upstream/late.py:3: gateway.openai",
                     "gateway/upstream/late.py:6: werkzeug.http",
                     "gateway/upstream/plain.py:1: flask",
                     "gateway/upstream/relative.py:1: gateway.chat",
                     "gateway/upstream/relative.py:1: gateway.chat.service"]
