import pytest


@pytest.mark.parametrize("p", ["a::b::c", "[", "]", "x]["])
def test_sub(sub_value, p):
    assert sub_value == "sub"


class CheckSub:
    def test_method(self, sub_value):
        assert sub_value == "sub"
