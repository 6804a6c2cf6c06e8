/** `weft policy apply -f`: the file parser (YAML or JSON; one policy, a list, or several documents). */
import { describe, expect, it } from "vitest";
import { parsePolicyFile } from "./policy.js";

const yamlOne = `
name: web-to-api
rules:
  - action: allow
    from: [{ identity: spiffe://weft.internal/ns/web/sa/frontend }]
    to:
      - namespace: payments
        serviceAccount: api
    ports:
      - { protocol: TCP, port: 8443 }
`;

describe("policy file", () => {
  it("policy - a YAML file with one policy parses to it, as written", () => {
    expect(parsePolicyFile(yamlOne, "p.yaml"), "policies").toEqual([
      {
        name: "web-to-api",
        rules: [
          {
            action: "allow",
            from: [{ identity: "spiffe://weft.internal/ns/web/sa/frontend" }],
            to: [{ namespace: "payments", serviceAccount: "api" }],
            ports: [{ protocol: "TCP", port: 8443 }],
          },
        ],
      },
    ]);
  });

  it("policy - a YAML list, --- documents and JSON all parse", () => {
    const rule = { action: "deny", from: [{ cidr: "0.0.0.0/0" }], to: [{ labels: { tier: "data" } }] };
    const list = `- name: a\n  rules: [${JSON.stringify(rule)}]\n- name: b\n  rules: [${JSON.stringify(rule)}]\n`;
    const docs = `name: a\nrules: [${JSON.stringify(rule)}]\n---\nname: b\nrules: [${JSON.stringify(rule)}]\n`;
    const json = JSON.stringify([{ name: "a", rules: [rule] }, { name: "b", rules: [rule] }]);
    for (const [what, text] of [["list", list], ["documents", docs], ["json", json]] as const) {
      expect(parsePolicyFile(text).map((p) => p.name), what).toEqual(["a", "b"]);
    }
  });

  it("policy - a bad or unknown field anywhere in the file refuses the whole file, naming the policy and field", () => {
    const good = `name: a\nrules: [{action: allow, from: [{namespace: x}], to: [{namespace: y}]}]\n`;
    const cases: [string, string, RegExp][] = [
      ["bad port", `${good}---\nname: b\nrules: [{action: allow, from: [{namespace: x}], to: [{namespace: y}], ports: [{protocol: tcp, port: 70000}]}]\n`, /f\.yaml policy 2 is invalid: rules\[0\]\.ports\[0\]\.port: must be 1-65535/],
      ["unknown action", `name: a\nrules: [{action: log, from: [{namespace: x}], to: [{namespace: y}]}]\n`, /rules\[0\]\.action: must be allow or deny/],
      ["unknown key", `name: a\nkind: NetworkPolicy\nrules: [{action: allow, from: [{namespace: x}], to: [{namespace: y}]}]\n`, /Unrecognized key/],
      ["duplicate name", `${good}---\n${good}`, /appears twice/],
      ["not YAML", `name: [unclosed\n`, /not YAML or JSON/],
      ["empty", ``, /holds no policy/],
    ];
    for (const [what, text, want] of cases) expect(() => parsePolicyFile(text, "f.yaml"), what).toThrow(want);
  });
});
