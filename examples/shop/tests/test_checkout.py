"""Example tests; each sleeps to stand in for real work of that length."""

from __future__ import annotations

import time

from shop import Cart


def test_checkout_0() -> None:
    time.sleep(1.2)
    cart = Cart()
    cart.add('apple', 100, 1)
    assert cart.total() == 100


def test_checkout_1() -> None:
    time.sleep(0.8)
    cart = Cart()
    cart.add('apple', 100, 2)
    assert cart.total() == 200


def test_checkout_2() -> None:
    time.sleep(0.3)
    cart = Cart()
    cart.add('apple', 100, 3)
    assert cart.total() == 300
