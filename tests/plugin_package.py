"""Installed packages made on disk for the plug-in tests: modules plus the `*.dist-info` folder (METADATA,
entry_points.txt) that pip writes, so `importlib.metadata` finds their entry points once the folder is
on sys.path or PYTHONPATH."""

from __future__ import annotations

from pathlib import Path


def write_distribution(folder: Path, name: str, modules: dict[str, str],
                       entry_points: dict[str, dict[str, str]], version: str = "1.0") -> Path:
    """Write `modules` (module name → source) and the distribution `name`'s metadata into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    for module, source in modules.items():
        (folder / f"{module}.py").write_text(source, encoding="utf-8")
    info = folder / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(
        "".join(f"[{group}]\n" + "".join(f"{key} = {value}\n" for key, value in points.items()) + "\n"
                for group, points in entry_points.items()), encoding="utf-8")
    return folder
