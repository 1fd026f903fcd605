"""Example tests; each sleeps to stand in for real work of that length."""

from __future__ import annotations

import time

from shop import Cart


def test_payments_0() -> None:
    time.sleep(1.5)
    cart = Cart()
    cart.add('apple', 100, 1)
    assert cart.total() == 100


def test_payments_1() -> None:
    time.sleep(0.2)
    cart = Cart()
    cart.add('apple', 100, 2)
    assert cart.total() == 200
