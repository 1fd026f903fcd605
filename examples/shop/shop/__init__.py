"""A tiny shop used by dagpar's example workspace."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Cart:
    """A shopping cart: item name → (unit price in cents, quantity)."""

    lines: dict[str, tuple[int, int]] = field(default_factory=dict)

    def add(self, name: str, price: int, quantity: int = 1) -> None:
        """Add *quantity* of *name* at *price* cents each."""
        if quantity <= 0:
            raise ValueError("quantity must be positive")
        old_price, old_qty = self.lines.get(name, (price, 0))
        self.lines[name] = (old_price, old_qty + quantity)

    def total(self, discount_percent: int = 0) -> int:
        """Total in cents after a whole-percent discount, rounded down."""
        gross = sum(p * q for p, q in self.lines.values())
        return gross * (100 - discount_percent) // 100
