import pytest

HOSTILE = [
    pytest.param(1, id="a b"),
    pytest.param(2, id="x[1]"),
    pytest.param(3, id="é"),
    pytest.param(4, id="日本"),
    pytest.param(5, id=".*+?()[]{}|^$\\"),
    pytest.param(6, id="a::b"),
    pytest.param(7, id="tab\there"),
    pytest.param(8, id="-dash"),
    pytest.param(9, id="semi;colon 'quote\" $HOME `x`"),
    pytest.param(10, id="a b"),
    pytest.param(11, id="{report_dir}"),
]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile(value, base):
    assert value >= base


@pytest.mark.parametrize("word", ["a b", "é"])
@pytest.mark.parametrize("n", [1, 2])
def test_grid(word, n):
    assert word and n


def test_plain():
    pass


def test_plain_other():
    pass
