import pytest


@pytest.fixture
def sub_value():
    return "sub"
