/**
 * Printing strings that others control (cloud tags and instance names, node names, policy
 * descriptions, error messages echoed from a cloud API) without letting them drive the terminal:
 * control characters (C0, DEL, C1 — escape sequences, carriage returns, bells) and the Unicode
 * controls that reorder or hide text (bidi overrides and isolates, zero-width characters) are
 * replaced by a visible escape such as `\x1b` or `\u202e`, so the text stays readable and inert.
 * Every table the CLI prints goes through it (cli/src/output.ts). Logs are JSON, whose encoding
 * already escapes C0 controls; tenant strings put in log fields go through it as well.
 */

// eslint-disable-next-line no-control-regex
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g;

/** `text` with every control character replaced by a visible escape (`\x1b`, `\u202e`). */
export function printable(text: string): string {
  return text.replace(UNPRINTABLE, (c) => {
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`;
  });
}
