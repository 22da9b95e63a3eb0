import { describe, expect, test } from "bun:test";
import {
  generateToken,
  hashToken,
  isWellFormedToken,
  TOKEN_LENGTH,
  TOKEN_PREFIX,
} from "../src/enrollment/token-format.ts";

describe("token format", () => {
  test("generates well-formed tokens", () => {
    const token = generateToken();
    expect(token.startsWith(TOKEN_PREFIX)).toBe(true);
    expect(token).toHaveLength(TOKEN_LENGTH);
    expect(isWellFormedToken(token)).toBe(true);
  });

  test("generates distinct tokens", () => {
    const tokens = new Set(Array.from({ length: 1000 }, generateToken));
    expect(tokens.size).toBe(1000);
  });

  test("rejects every single-character typo", () => {
    const token = generateToken();
    let accepted = 0;
    for (let i = TOKEN_PREFIX.length; i < token.length; i++) {
      const replacement = token[i] === "x" ? "y" : "x";
      if (isWellFormedToken(token.slice(0, i) + replacement + token.slice(i + 1))) accepted += 1;
    }
    expect(accepted).toBe(0);
  });

  test("rejects a swap of adjacent characters", () => {
    const token = generateToken();
    const index = token.split("").findIndex((char, i) => i > 10 && char !== token[i + 1]);
    const swapped =
      token.slice(0, index) + token[index + 1] + token[index] + token.slice(index + 2);
    expect(isWellFormedToken(swapped)).toBe(false);
  });

  test("rejects the wrong prefix, length and charset", () => {
    const token = generateToken();
    expect(isWellFormedToken(`xedtok_${token.slice(7)}`)).toBe(false);
    expect(isWellFormedToken(token.slice(0, -1))).toBe(false);
    expect(isWellFormedToken(`${token}0`)).toBe(false);
    expect(isWellFormedToken(`${token.slice(0, 20)}-${token.slice(21)}`)).toBe(false);
    expect(isWellFormedToken("")).toBe(false);
  });

  test("hashes to hex SHA-256", () => {
    const token = generateToken();
    expect(hashToken(token)).toMatch(/^[0-9a-f]{64}$/);
    expect(hashToken(token)).toBe(hashToken(token));
    expect(hashToken(token)).not.toContain(token.slice(TOKEN_PREFIX.length, 20));
  });
});
