/**
 * The Weft console: log in with the admin token (it becomes an HttpOnly session cookie), then the
 * topology, inventory, policy matrix and flows, kept current by the controller's live stream.
 * Preact: a small component library with React's model, so the bundle stays small and is served
 * from the controller's own files.
 */
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { currentSession, login, logout } from "./api.js";
import { useConsoleData } from "./data.js";
import "./style.css";
import { Flows } from "./views/Flows.js";
import { Inventory } from "./views/Inventory.js";
import { NodeDetail } from "./views/NodeDetail.js";
import { Policy } from "./views/Policy.js";
import { Topology } from "./views/Topology.js";

type View = "topology" | "inventory" | "policy" | "flows";
const VIEWS: { id: View; label: string }[] = [
  { id: "topology", label: "Topology" },
  { id: "inventory", label: "Inventory" },
  { id: "policy", label: "Policy" },
  { id: "flows", label: "Flows" },
];

function Login({ onDone }: { onDone: () => void }) {
  const [token, setToken] = useState("");
  const [error, setError] = useState("");
  const submit = async (e: Event) => {
    e.preventDefault();
    try {
      await login(token);
      setToken("");
      onDone();
    } catch (err) {
      setError((err as Error).message);
    }
  };
  return (
    <main class="login">
      <h1>Weft console</h1>
      <form onSubmit={submit}>
        <label for="token">Admin token</label>
        <input id="token" type="password" autocomplete="off" value={token} onInput={(e) => setToken((e.target as HTMLInputElement).value)} required />
        <button type="submit">Log in</button>
        <p role="alert" class="error">
          {error}
        </p>
      </form>
      <p class="hint">
        The token is in the controller's state directory (<code>admin-token</code>). It is sent once; the browser keeps only a session cookie.
      </p>
    </main>
  );
}

function Console({ onLogout }: { onLogout: () => void }) {
  const data = useConsoleData();
  const [view, setView] = useState<View>("topology");
  const [open, setOpen] = useState<string | undefined>();
  const node = data.nodes.find((n) => n.nodeId === open);
  const online = data.nodes.filter((n) => n.status === "online").length;
  return (
    <>
      <header class="top">
        <h1>Weft</h1>
        <nav aria-label="Views">
          {VIEWS.map((v) => (
            <button type="button" key={v.id} aria-current={view === v.id ? "page" : undefined} onClick={() => setView(v.id)}>
              {v.label}
            </button>
          ))}
        </nav>
        <p class="summary" role="status" data-testid="summary" data-live={data.live ? "yes" : "no"}>
          {data.nodes.length} nodes, {online} online · {data.live ? "live" : "reconnecting…"}
        </p>
        <button type="button" onClick={() => void logout().finally(onLogout)}>
          Log out
        </button>
      </header>
      <main>
        {data.error && (
          <p role="alert" class="error">
            {data.error}
          </p>
        )}
        {view === "topology" && <Topology nodes={data.nodes} inventory={data.inventory} onOpen={setOpen} />}
        {view === "inventory" && <Inventory inventory={data.inventory} nodes={data.nodes} />}
        {view === "policy" && <Policy matrix={data.matrix} identities={data.identities} policies={data.policies} />}
        {view === "flows" && <Flows flows={data.flows} />}
        {node && <NodeDetail node={node} nodes={data.nodes} onClose={() => setOpen(undefined)} />}
      </main>
    </>
  );
}

function App() {
  const [state, setState] = useState<"checking" | "out" | "in">("checking");
  useEffect(() => {
    currentSession().then(
      (s) => setState(s ? "in" : "out"),
      () => setState("out"),
    );
  }, []);
  if (state === "checking") return <main aria-busy="true">Loading…</main>;
  if (state === "out") return <Login onDone={() => setState("in")} />;
  return <Console onLogout={() => setState("out")} />;
}

const root = document.getElementById("app");
if (root) render(<App />, root);
