/**
 * Identities and the policy matrix: rows are sources, columns destinations; each cell says what
 * the datapath does (open, allow, partial, deny) and, in its title and on selection, why (the
 * policies and rules). Below, the policies in force and a form to apply one (JSON, as
 * `PUT /v1/policies/:name` takes it).
 */
import type { Identity, Policy as PolicyDoc, PolicyMatrix } from "@weft/protocol";
import { useState } from "preact/hooks";
import { put } from "../api.js";
import { shortId } from "./format.js";

const SYMBOL = { open: "open", allow: "allow", partial: "ports", deny: "deny" } as const;

export function Policy({ matrix, identities, policies }: { matrix: PolicyMatrix | undefined; identities: Identity[]; policies: PolicyDoc[] }) {
  const [text, setText] = useState("");
  const [result, setResult] = useState<string>("");
  const [picked, setPicked] = useState<string>("");
  const apply = async (e: Event) => {
    e.preventDefault();
    try {
      const doc = JSON.parse(text) as { name?: string };
      if (!doc.name) throw new Error("the policy needs a name");
      await put(`/v1/policies/${encodeURIComponent(doc.name)}`, doc);
      setResult(`applied ${doc.name}`);
    } catch (err) {
      setResult(`not applied: ${(err as Error).message}`);
    }
  };
  const cells = new Map((matrix?.cells ?? []).map((c) => [`${c.source}/${c.destination}`, c]));
  return (
    <section aria-labelledby="policy-title">
      <h2 id="policy-title">Policy</h2>
      <h3>Who may reach whom</h3>
      {!matrix ? (
        <p>Loading…</p>
      ) : (
        <div class="matrix-wrap">
          <table class="matrix" data-testid="policy-matrix" data-policies={matrix.policies.join(",")}>
            <caption>Rows: source identity. Columns: destination identity. Select a cell for the reason.</caption>
            <thead>
              <tr>
                <th scope="col">from \ to</th>
                {matrix.identities.map((d) => (
                  <th scope="col" key={d.id} title={d.spiffeId}>
                    {shortId(d.spiffeId)}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {matrix.identities.map((s) => (
                <tr key={s.id}>
                  <th scope="row" title={`${s.spiffeId} on ${s.hosts.join(", ")}`}>
                    {shortId(s.spiffeId)}
                  </th>
                  {matrix.identities.map((d) => {
                    const c = cells.get(`${s.id}/${d.id}`);
                    const v = c?.verdict ?? "open";
                    return (
                      <td key={d.id} class={`cell ${v}`} data-src={s.spiffeId} data-dst={d.spiffeId} data-verdict={v}>
                        <button type="button" title={c?.why} onClick={() => setPicked(`${shortId(s.spiffeId)} → ${shortId(d.spiffeId)}: ${c?.why ?? ""}`)}>
                          {SYMBOL[v]}
                        </button>
                      </td>
                    );
                  })}
                </tr>
              ))}
            </tbody>
          </table>
          <p role="status" data-testid="matrix-why">
            {picked}
          </p>
          {matrix.omitted > 0 && <p>{matrix.omitted} identities not shown.</p>}
        </div>
      )}
      <h3>Identities</h3>
      <table>
        <thead>
          <tr>
            <th scope="col">SPIFFE ID</th>
            <th scope="col">Number</th>
          </tr>
        </thead>
        <tbody>
          {identities.map((i) => (
            <tr key={i.id}>
              <td>{i.spiffeId}</td>
              <td>{i.id}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <h3>Policies</h3>
      <ul>
        {policies.map((p) => (
          <li key={p.name}>
            <code>{p.name}</code>: {p.rules.length} rule{p.rules.length === 1 ? "" : "s"}
            {p.description ? ` (${p.description})` : ""}
          </li>
        ))}
      </ul>
      <form onSubmit={apply} class="apply">
        <label for="policy-json">Apply a policy (JSON)</label>
        <textarea id="policy-json" rows={8} value={text} onInput={(e) => setText((e.target as HTMLTextAreaElement).value)} spellcheck={false} />
        <button type="submit">Apply policy</button>
        <p role="status" data-testid="apply-result">
          {result}
        </p>
      </form>
    </section>
  );
}
