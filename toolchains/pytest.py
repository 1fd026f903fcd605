"""The built-in pytest toolchain: ``use: pytest`` in dagpar.yaml.

Items are test files (``[file]``), or single tests (``[file, "Class::test[param]"]``) when a
filter or the planner narrows a file; each slice runs the project's own pytest on its share.
"""

from __future__ import annotations

from dagpar_cli import Directory, collect_items, field, object_type, run_tests


@object_type(runner="pytest")
class PytestTests:
    """A set of pytest tests that can be split into slices."""

    workspace: Directory
    tests: list[list[str]] = field()  # +parallel
    image: str = "python:3.12-slim"

    # +parallel
    def test(self) -> None:
        """Run the tests with pytest (one JUnit report per slice)."""
        run_tests("pytest", self.workspace, self.tests, image=self.image)


@object_type
class Pytest:
    """pytest, as the project runs it (its .venv, VIRTUAL_ENV, or PATH)."""

    source: Directory
    image: str = "python:3.12-slim"

    def test_files(self) -> PytestTests:
        """Every test file pytest collects, as a splittable set."""
        return PytestTests(
            workspace=self.source, tests=collect_items("pytest", self.source), image=self.image
        )

    # +check
    def test(self) -> None:
        """Run the whole suite, split into slices."""
        self.test_files().test()
