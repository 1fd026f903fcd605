"""The built-in Go toolchain: ``use: go`` in dagpar.yaml.

Items are packages (``[pkg]``), or single top-level tests (``[pkg, "TestPut"]``) when a filter
or the planner narrows a package; each slice runs ``go test -json`` on its share.
"""

from __future__ import annotations

from dagpar_cli import Directory, collect_items, field, object_type, run_tests


@object_type(runner="go")
class GoPackages:
    """A set of Go packages (or tests in them) that can be split into slices."""

    workspace: Directory
    packages: list[list[str]] = field()  # +parallel
    image: str = "golang:1.22"

    # +parallel
    def test(self) -> None:
        """Run the tests with ``go test -json``."""
        run_tests("go", self.workspace, self.packages, image=self.image)


@object_type
class Go:
    """``go test`` from PATH, on the module in ``source``."""

    source: Directory
    image: str = "golang:1.22"

    def test_files(self) -> GoPackages:
        """Every package with tests, as a splittable set."""
        return GoPackages(
            workspace=self.source, packages=collect_items("go", self.source), image=self.image
        )

    # +check
    def test(self) -> None:
        """Run every package's tests, split into slices."""
        self.test_files().test()
