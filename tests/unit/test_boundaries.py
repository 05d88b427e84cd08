"""Package boundaries, read from the source: `app/` never imports `models/` or `training/`,
and `training/` uses only the app's public names (no `_private` ones)."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def imports(package: str) -> list[tuple[str, str, str]]:
    """(file, module, name) of every import in the package; name "" for `import x`."""
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                found += [(path.name, node.module, alias.name) for alias in node.names]
            elif isinstance(node, ast.Import):
                found += [(path.name, alias.name, "") for alias in node.names]
    return found


def test_app_imports_neither_models_nor_training() -> None:
    found = imports("app")
    assert found, "no imports read: the scan is broken"
    wrong = [i for i in found if i[1].split(".")[0] in {"models", "training"}]
    assert wrong == []


def test_training_uses_only_public_app_names() -> None:
    from_app = [i for i in imports("training") if i[1].split(".")[0] == "app"]
    assert any(module == "app.serving" for _, module, _ in from_app)  # the shared core
    private = [
        i
        for i in from_app
        if i[2].startswith("_") or any(p.startswith("_") for p in i[1].split("."))
    ]
    assert private == []
