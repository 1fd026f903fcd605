"use strict";

const { add } = require("../src/math");

describe("metacharacters .*+?()[]{}|^$\\ galore", () => {
  test("dot . star * plus + question ?", () => {
    expect(add(1, 1)).toBe(2);
  });
  test("parens (a|b) brackets [x] braces {2,3}", () => {
    expect(add(2, 2)).toBe(4);
  });
  test("anchors ^start end$ and backslash \\d", () => {
    expect(add(0, 0)).toBe(0);
  });
  test("pipe | alone", () => {
    expect(true).toBe(true);
  });
});

describe("level one", () => {
  describe("level two", () => {
    describe("level three", () => {
      test("deep test", () => {
        expect(add(1, 2)).toBe(3);
      });
      test("deep test with more", () => {
        expect(add(2, 3)).toBe(5);
      });
    });
    test("middle test", () => {
      expect(add(3, 3)).toBe(6);
    });
  });
});

describe("unicode", () => {
  test("ünïcödé 名前 🚀", () => {
    expect("ü".length).toBe(1);
  });
  test("ÜNÏCÖDÉ upper", () => {
    expect("Ü".length).toBe(1);
  });
});

describe("each", () => {
  test.each([
    [1, 1, 2],
    [2, 3, 5],
    [-1, 1, 0],
  ])("add(%i, %i) = %i", (a, b, expected) => {
    expect(add(a, b)).toBe(expected);
  });
  test.each`
    text       | length
    ${"a b"}   | ${3}
    ${"x|y"}   | ${3}
  `("length of $text is $length", ({ text, length }) => {
    expect(text.length).toBe(length);
  });
});

test("add", () => {
  expect(add(1, 0)).toBe(1);
});

test("add more", () => {
  expect(add(1, 5)).toBe(6);
});

test("  spaces   inside  and around  ", () => {
  expect(1).toBe(1);
});

test.skip("skipped in source", () => {
  throw new Error("a skipped test must never run");
});

test.todo("todo: write this test");

test("fails on purpose", () => {
  expect(add(2, 2)).toBe(5);
});
