"use strict";

test("x", () => {
  expect("same-a").toMatch(/^same-/);
});

test("y", () => {
  expect("same-a".length).toBe(6);
});

describe("shared", () => {
  test("name in two files", () => {
    expect(true).toBe(true);
  });
});
