"use strict";

// Two tests with one full name: Jest cannot select one without the other.
test("twice", () => {
  expect(1).toBe(1);
});

test("twice", () => {
  expect(2).toBe(2);
});

test("once", () => {
  expect(3).toBe(3);
});
