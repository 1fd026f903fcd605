"use strict";

test("never defined", () => {
  expect(1).toBe(1);
);
