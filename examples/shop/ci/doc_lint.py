"""A custom toolchain: checks the Markdown pages of docs/, split across slices.

It shows both ways of marking things: the seed's comment pragmas (``# +parallel``,
``# +check``) and the decorator forms (``field(parallel=True)``, ``@parallel``, ``@check``).
"""

from __future__ import annotations

from dagpar_cli import Directory, check, dag, field, object_type, parallel


@object_type
class Pages:
    """Markdown pages that can be checked independently."""

    workspace: Directory
    files: list[str] = field()  # +parallel

    # +parallel
    def lint(self) -> None:
        """Every page needs a title line and no trailing spaces."""
        for path in self.files:
            with dag.parallel.task(path):
                (
                    dag.container()
                    .from_("python:3.12-slim")
                    .with_directory("/docs", self.workspace)
                    .with_workdir("/docs")
                    .with_exec(["grep", "-q", "^# ", path])
                    .sync()
                )


@object_type
class WordCounts:
    """Pages whose word counts are computed in slices and merged into one directory."""

    workspace: Directory
    files: list[str] = field(parallel=True)

    @parallel
    def count(self) -> Directory:
        """Write ``<page>.count`` files; slices' outputs are merged as an overlay."""
        out = dag.directory()
        ctr = (
            dag.container()
            .from_("python:3.12-slim")
            .with_directory("/docs", self.workspace)
            .with_directory("/out", out, writable=True)
            .with_workdir("/docs")
        )
        for path in self.files:
            ctr = ctr.with_exec(["sh", "-c", 'wc -w < "$1" > "$2/$1.count"', "sh", path, "/out"])
        return ctr.directory("/out")


@object_type
class DocLint:
    """Checks for the docs/ directory."""

    source: Directory

    def pages(self) -> Pages:
        """Every Markdown page."""
        return Pages(workspace=self.source, files=self.source.glob("*.md"))

    def word_counts(self) -> WordCounts:
        """Every Markdown page, for counting."""
        return WordCounts(workspace=self.source, files=self.source.glob("*.md"))

    # +check
    def lint(self) -> None:
        """Lint every page."""
        self.pages().lint()

    @check
    def counts(self) -> None:
        """Counting every page must work."""
        self.word_counts().count()
