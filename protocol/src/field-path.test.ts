import { describe, expect, it } from "vitest";
import { fieldPath } from "./field-path.js";

describe("fieldPath", () => {
  it("field path - indexes in brackets, keys after dots, the whole document named", () => {
    expect(fieldPath(["rules", 1, "ports", 0, "port"]), "nested").toBe("rules[1].ports[0].port");
    expect(fieldPath([0, "name"]), "a list at the top").toBe("[0].name");
    expect(fieldPath([]), "the whole document").toBe("(document)");
    expect(fieldPath([], "(body)"), "the whole body").toBe("(body)");
  });
});
