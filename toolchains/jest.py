"""The built-in Jest toolchain: ``use: jest`` in dagpar.yaml.

Items are test files (``[file]``), or single tests (``[file, "describe test"]``) when a
filter or the planner narrows a file; each slice runs the project's own Jest on its share.
"""

from __future__ import annotations

from dagpar_cli import Directory, collect_items, field, object_type, run_tests


@object_type(runner="jest")
class JestTests:
    """A set of Jest tests that can be split into slices."""

    workspace: Directory
    tests: list[list[str]] = field()  # +parallel
    image: str = "node:20-alpine"

    # +parallel
    def test(self) -> None:
        """Run the tests with Jest (one JSON report per slice)."""
        run_tests("jest", self.workspace, self.tests, image=self.image)


@object_type
class Jest:
    """Jest from the project's own node_modules."""

    source: Directory
    image: str = "node:20-alpine"

    def test_files(self) -> JestTests:
        """Every test file Jest lists, as a splittable set."""
        return JestTests(
            workspace=self.source, tests=collect_items("jest", self.source), image=self.image
        )

    # +check
    def test(self) -> None:
        """Run the whole suite, split into slices."""
        self.test_files().test()
