import dagpar_no_such_module_anywhere  # noqa: F401


def test_unreachable():
    pass
