"""dagpar's built-in toolchains (``use: pytest``, ``use: jest``, ``use: go``)."""
