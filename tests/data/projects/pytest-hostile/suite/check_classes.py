import pytest


class CheckOuter:
    def test_a(self):
        pass

    @pytest.mark.parametrize("p", ["x y", "[z]"])
    def test_param(self, p):
        assert p

    class CheckInner:
        def test_deep(self):
            pass

        class CheckInnermost:
            def test_deeper(self):
                pass


@pytest.mark.skip(reason="skipped on purpose")
def test_skipped():
    pass


@pytest.mark.xfail(reason="known bug")
def test_xfail():
    assert False


def test_failing():
    assert 1 == 2, "one is not two"


@pytest.fixture
def broken_teardown():
    yield
    raise RuntimeError("teardown broke")


def test_fail_and_teardown_error(broken_teardown):
    assert False, "call failed"


@pytest.fixture
def broken_setup():
    raise RuntimeError("setup broke")


def test_setup_error(broken_setup):
    pass
