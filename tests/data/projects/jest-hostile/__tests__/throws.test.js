"use strict";

test("defined before the throw", () => {
  expect(1).toBe(1);
});

throw new Error("this test file throws at the top level");
