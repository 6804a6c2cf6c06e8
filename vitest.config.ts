import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

const src = (p: string) => fileURLToPath(new URL(p, import.meta.url));

// Tests run against the TypeScript sources; the workspace packages resolve to src. Subpath
// entries come before their package: an alias also matches "<name>/…".
const alias = {
  "@weft/protocol/text": src("./protocol/src/text.ts"),
  "@weft/protocol": src("./protocol/src/index.ts"),
  "@weft/util": src("./util/src/index.ts"),
  "@weft/bpf/flow-table-limits": src("./bpf/src/flow-table-limits.ts"),
  "@weft/bpf": src("./bpf/src/index.ts"),
  "@weft/controller/mesh": src("./controller/src/mesh/index.ts"),
  "@weft/controller": src("./controller/src/index.ts"),
  "@weft/agent/local": src("./agent/src/local.ts"),
  "@weft/agent/host": src("./agent/src/host.ts"),
  "@weft/agent/flows": src("./agent/src/datapath/flows.ts"),
  "@weft/agent": src("./agent/src/index.ts"),
  "@weft/lab": src("./test/lab/src/index.ts"),
  "@weft/cloud/model": src("./cloud-adapters/src/model.ts"),
  "@weft/cloud/aws": src("./cloud-adapters/src/aws/index.ts"),
  "@weft/cloud/azure": src("./cloud-adapters/src/azure/index.ts"),
  "@weft/cloud/gcp": src("./cloud-adapters/src/gcp/index.ts"),
  "@weft/cloud/onprem": src("./cloud-adapters/src/onprem/index.ts"),
  "@weft/cloud": src("./cloud-adapters/src/index.ts"),
  "@weft/cloud-sim": src("./cloud-sim/src/index.ts"),
};

export default defineConfig({
  resolve: { alias },
  test: {
    projects: [
      {
        resolve: { alias },
        test: {
          name: "unit",
          include: ["*/src/**/*.test.ts", "test/lab/src/**/*.test.ts", "test/bench/src/**/*.test.ts", "test/integration/**/*.test.ts"],
          exclude: ["**/*.root.test.ts", "**/node_modules/**", "**/dist/**"],
          testTimeout: 30_000,
        },
      },
      {
        resolve: { alias },
        test: {
          name: "root",
          include: ["*/src/**/*.root.test.ts", "test/lab/src/**/*.root.test.ts", "test/integration/**/*.root.test.ts"],
          exclude: ["**/node_modules/**", "**/dist/**"],
          pool: "forks",
          poolOptions: { forks: { singleFork: true } },
          testTimeout: 120_000,
          hookTimeout: 180_000,
        },
      },
      {
        resolve: { alias },
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          pool: "forks",
          poolOptions: { forks: { singleFork: true } },
          testTimeout: 300_000,
          hookTimeout: 300_000,
        },
      },
    ],
  },
});
