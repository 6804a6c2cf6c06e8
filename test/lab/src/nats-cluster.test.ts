/** Unit tests of the lab's NATS cluster config (pure rendering). */
import { describe, expect, it } from "vitest";
import { natsNodeFiles, natsUrls, renderNatsConf } from "./nats-cluster.js";
import { labTopology } from "./topology.js";

describe("lab - nats cluster", () => {
  const t = labTopology({ prefix: "wcl", layout: { controllers: 3 } });

  it("lab - nats cluster URLs are one tls:// URL per controller host", () => {
    expect(natsUrls(t.controllers), "URLs").toEqual(["tls://198.19.0.11:4222", "tls://198.19.0.12:4222", "tls://198.19.0.13:4222"]);
  });

  it("lab - nats cluster config listens on the host's own address, routes to all three, TLS, JetStream and the operator's fragment", () => {
    const files = natsNodeFiles("/lab/hosts/ctl-2");
    const conf = renderNatsConf(t.controllers[1]!, t.controllers, files, "operator: X");
    for (const want of [
      "server_name: ctl-2",
      "host: 198.19.0.12",
      "port: 4222",
      `jetstream { store_dir: "/lab/hosts/ctl-2/nats/js"`,
      `tls { cert_file: "/lab/hosts/ctl-2/nats/nats.crt", key_file: "/lab/hosts/ctl-2/nats/nats.key" }`,
      `listen: "198.19.0.12:6222", routes: ["nats-route://198.19.0.11:6222", "nats-route://198.19.0.12:6222", "nats-route://198.19.0.13:6222"]`,
      "operator: X",
    ]) {
      expect(conf, `config: want ${want}`).toContain(want);
    }
  });
});
