"""dagpar's own scan of the ``dagpar`` entry points finds what :mod:`importlib.metadata` finds."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from dagpar_cli._entry_points import EntryPoint, scan
from dagpar_cli.pluginmanager import get_plugin_manager, plugin_distributions


def _dist(site: Path, dirname: str, metadata: str, entry_points: str | None) -> None:
    info = site / dirname
    info.mkdir(parents=True)
    (info / ("PKG-INFO" if dirname.endswith(".egg-info") else "METADATA")).write_text(metadata)
    if entry_points is not None:
        (info / "entry_points.txt").write_text(entry_points)


def _reference(path: list[str], group: str) -> list[tuple[str, str, str]]:
    """What pluggy's ``load_setuptools_entrypoints`` iterates: every distribution, no dedup."""
    return [
        (ep.name, ep.value, f"{dist.metadata['Name']}=={dist.version}")
        for dist in importlib.metadata.distributions(path=path)
        for ep in dist.entry_points
        if ep.group == group
    ]


@pytest.fixture
def site(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    _dist(
        site,
        "alpha_plugin-1.2.dist-info",
        "Metadata-Version: 2.1\nName: Alpha-Plugin\nVersion: 1.2\n\nName: not this\n",
        "# a comment\n[console_scripts]\nalpha = alpha:main\n\n"
        "[dagpar]\n  alpha = alpha_dagpar.plugin\n# another comment\n"
        "deep = alpha_dagpar.deep:Holder.plugin [extra]\n",
    )
    _dist(site, "beta-0.1.dist-info", "Name: beta\nVersion: 0.1\n", "[console_scripts]\nb = b:m\n")
    _dist(site, "gamma.egg-info", "Name: gamma\nVersion: 3.0.dev1\n", "[dagpar]\ngamma=gamma.p\n")
    _dist(site, "delta-2.dist-info", "Name: delta\nVersion: 2\n", None)
    (site / "epsilon-1.egg-info").write_text("Name: epsilon\nVersion: 1\n")  # a file: no eps
    return site


def test_scan_matches_importlib_metadata(site: Path, tmp_path: Path) -> None:
    path = [str(site), str(tmp_path / "missing"), str(site)]
    found = scan("dagpar", path)
    assert found is not None
    assert [(e.name, e.value, e.distribution) for e in found] == _reference(path, "dagpar")
    assert {e.name for e in found} == {"alpha", "deep", "gamma"}
    assert ("deep", "Alpha-Plugin==1.2") in {(e.name, e.distribution) for e in found}


def test_scan_gives_up_where_importlib_metadata_reads_more(site: Path, tmp_path: Path) -> None:
    archive = tmp_path / "plugins.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("zeta-1.dist-info/entry_points.txt", "[dagpar]\nzeta = zeta\n")
    assert scan("dagpar", [str(site), str(archive)]) is None
    assert scan("dagpar", [str(tmp_path / "old.egg")]) is None


def test_entry_point_loads_module_and_attribute() -> None:
    assert EntryPoint("x", "os.path:join", "d==1").load() is __import__("os").path.join
    assert EntryPoint("x", "os.path", "d==1").load() is __import__("os").path
    assert EntryPoint("x", " os.path : join [extra] ", "d==1").load() is __import__("os").path.join
    for bad in ("not a value!", "", "os:", "os:path:join", "os..path"):
        with pytest.raises(ValueError, match="malformed"):
            EntryPoint("x", bad, "d==1").load()


def test_plugin_manager_loads_the_installed_runners_and_their_distributions() -> None:
    pm = get_plugin_manager()
    for name in ("pytest", "jest", "go"):
        assert pm.has_plugin(name)
    reference = pm.__class__(pm.project_name)
    reference.load_setuptools_entrypoints(pm.project_name)
    expected = [f"{d.project_name}=={d.version}" for _, d in reference.list_plugin_distinfo()]
    assert plugin_distributions(pm) == expected


def test_plugin_manager_start_does_not_import_importlib_metadata() -> None:
    code = (
        "import sys\n"
        "from dagpar_cli.pluginmanager import get_plugin_manager\n"
        "pm = get_plugin_manager()\n"
        "assert pm.has_plugin('pytest')\n"
        "print('importlib.metadata' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "False"


def test_version_is_the_installed_distributions() -> None:
    """``dagpar --version`` prints ``dagpar_cli.__version__``; it must be the package's."""
    from dagpar_cli import __version__

    assert importlib.metadata.version("dagpar") == __version__


@pytest.mark.parametrize("name", ["foo", "Foo.Bar", "a-_.b", "-x", "x_", "a__b--c..d", "_-_"])
def test_names_normalize_as_importlib_metadata_does(name: str) -> None:
    import re

    from dagpar_cli._entry_points import _normalize

    assert _normalize(name) == re.sub(r"[-_.]+", "-", name).lower().replace("-", "_")
