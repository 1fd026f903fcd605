"""The state directory: made on demand, ignored by git, skipped by backup tools."""

from __future__ import annotations

from pathlib import Path

from dagpar_cli.statedir import STATE_DIR, state_dir


def test_state_dir_is_made_with_its_gitignore_and_cachedir_tag(tmp_path: Path) -> None:
    path = state_dir(tmp_path)
    assert path == tmp_path / STATE_DIR == tmp_path / ".dagpar"
    assert (path / ".gitignore").read_text().splitlines()[-1] == "*"
    assert (
        (path / "CACHEDIR.TAG")
        .read_text()
        .startswith("Signature: 8a477f597d28d172789f06886806bc55\n")
    )


def test_state_dir_leaves_what_is_there_alone(tmp_path: Path) -> None:
    (tmp_path / STATE_DIR).mkdir()
    (tmp_path / STATE_DIR / ".gitignore").write_text("mine\n")
    state_dir(tmp_path)
    state_dir(tmp_path)
    assert (tmp_path / STATE_DIR / ".gitignore").read_text() == "mine\n"
