"use strict";

test("x", () => {
  expect("same-b").toMatch(/^same-/);
});

test("y", () => {
  expect("same-b".length).toBe(6);
});

describe("shared", () => {
  test("name in two files", () => {
    expect(true).toBe(true);
  });
});
