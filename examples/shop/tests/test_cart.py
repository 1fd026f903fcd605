"""Example tests; each sleeps to stand in for real work of that length."""

from __future__ import annotations

import time

from shop import Cart


def test_cart_0() -> None:
    time.sleep(0.05)
    cart = Cart()
    cart.add('apple', 100, 1)
    assert cart.total() == 100


def test_cart_1() -> None:
    time.sleep(0.1)
    cart = Cart()
    cart.add('apple', 100, 2)
    assert cart.total() == 200


def test_cart_2() -> None:
    time.sleep(0.05)
    cart = Cart()
    cart.add('apple', 100, 3)
    assert cart.total() == 300


def test_cart_3() -> None:
    time.sleep(0.2)
    cart = Cart()
    cart.add('apple', 100, 4)
    assert cart.total() == 400


def test_cart_4() -> None:
    time.sleep(0.05)
    cart = Cart()
    cart.add('apple', 100, 5)
    assert cart.total() == 500


def test_cart_5() -> None:
    time.sleep(0.1)
    cart = Cart()
    cart.add('apple', 100, 6)
    assert cart.total() == 600
