"use strict";

describe("file with a space", () => {
  test("runs", () => {
    expect("hostile names").toContain(" ");
  });
  test("tab\there", () => {
    expect(1).toBe(1);
  });
});
