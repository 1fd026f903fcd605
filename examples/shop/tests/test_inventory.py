"""Example tests; each sleeps to stand in for real work of that length."""

from __future__ import annotations

import time

from shop import Cart


def test_inventory_0() -> None:
    time.sleep(0.6)
    cart = Cart()
    cart.add('apple', 100, 1)
    assert cart.total() == 100


def test_inventory_1() -> None:
    time.sleep(0.6)
    cart = Cart()
    cart.add('apple', 100, 2)
    assert cart.total() == 200


def test_inventory_2() -> None:
    time.sleep(0.4)
    cart = Cart()
    cart.add('apple', 100, 3)
    assert cart.total() == 300


def test_inventory_3() -> None:
    time.sleep(0.2)
    cart = Cart()
    cart.add('apple', 100, 4)
    assert cart.total() == 400
