"""The ``scripts`` toolchain: its +parallel field holds shell scripts."""

from __future__ import annotations

from dagpar_cli import Directory, collect_items, field, object_type, run_tests


@object_type(runner="scripts")
class ScriptFiles:
    workspace: Directory
    files: list[list[str]] = field()  # +parallel

    # +parallel
    def test(self) -> None:
        run_tests("scripts", self.workspace, self.files)


@object_type
class Scripts:
    source: Directory

    def test_files(self) -> ScriptFiles:
        return ScriptFiles(workspace=self.source, files=collect_items("scripts", self.source))

    # +check
    def test(self) -> None:
        self.test_files().test()
