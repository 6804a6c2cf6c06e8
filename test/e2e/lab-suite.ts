/**
 * The frame every lab suite shares, written once:
 *
 *   - before the suite: the leftovers of an interrupted run removed (its namespaces, recorded by
 *     the lab, and its host dirs, kept on failure), a fresh lab brought up, the suite's cluster
 *     made and the suite's own set-up run on it;
 *   - after it: the suite's own processes stopped, then every process of the cluster, then the lab
 *     removed — also when the set-up or a test failed; then the host dirs (the logs) are kept and
 *     the suite says where;
 *   - the suite's measured figures, printed as they are measured and all together at the end.
 *
 * Usage: `const suite = labSuite("nat", opts)` at the top of the file (its `note` is usable by
 * helpers outside the describe), then `suite.hooks({ setup: async (cluster) => … })` inside the
 * describe block, which registers the vitest hooks.
 */
import { rm } from "node:fs/promises";
import { afterAll, beforeAll, beforeEach } from "vitest";
import { LabCluster, labDir, labDown, labUp, type LabOptions } from "@weft/lab";

export interface LabSuiteHooks {
  /** Before the lab comes up (e.g. building what the suite installs). */
  prepare?: () => Promise<void>;
  /** Makes the suite's cluster once the lab is up (default: `new LabCluster(opts)`). */
  cluster?: () => LabCluster;
  /** The suite's own set-up on its fresh cluster (controller, keys, agents…). */
  setup: (cluster: LabCluster) => Promise<void>;
  /** Stops what the suite started itself, before the cluster's processes are stopped. */
  teardown?: () => Promise<void>;
  /** After the lab is removed (e.g. temporary directories outside it). */
  cleanup?: () => Promise<void>;
  /** Also run when a test fails (e.g. a screenshot). */
  onTestFailed?: () => Promise<unknown>;
  setupTimeoutMs?: number;
  teardownTimeoutMs?: number;
}

export interface LabSuite {
  /** Records a measured figure: printed now and again with the others at the end of the suite. */
  note(line: string): void;
  /** Keeps the lab's logs after the suite (a failure the hooks cannot see, e.g. inside a step). */
  markFailed(): void;
  /** Registers the suite's vitest hooks; call inside its describe block. */
  hooks(h: LabSuiteHooks): void;
}

export function labSuite(name: string, opts: LabOptions): LabSuite {
  const figures: string[] = [];
  let failed = false;
  let cluster: LabCluster | undefined;
  const label = `e2e ${name}`;
  return {
    note(line) {
      figures.push(line);
      console.log(`${label}: ${line}`);
    },
    markFailed() {
      failed = true;
    },
    hooks(h) {
      beforeAll(async () => {
        try {
          await h.prepare?.();
          await labDown(opts);
          await rm(labDir(opts), { recursive: true, force: true });
          await labUp(opts);
          cluster = h.cluster ? h.cluster() : new LabCluster(opts);
          await h.setup(cluster);
        } catch (err) {
          failed = true;
          throw err;
        }
      }, h.setupTimeoutMs);

      beforeEach(({ onTestFailed }) =>
        onTestFailed(async () => {
          failed = true;
          await h.onTestFailed?.().catch(() => undefined);
        }),
      );

      afterAll(async () => {
        try {
          try {
            await h.teardown?.();
          } finally {
            await cluster?.stopAll();
          }
        } finally {
          const keep = failed || process.env.WEFT_E2E_KEEP_LOGS === "1";
          await labDown({ ...opts, keepHostDirs: keep });
          await h.cleanup?.();
          if (keep && cluster) console.log(`${label}: ${failed ? "failed; " : ""}logs kept in ${cluster.logDir} (removed by the next run)`);
          if (figures.length > 0) console.log(`${label} figures:\n  ${figures.join("\n  ")}`);
        }
      }, h.teardownTimeoutMs);
    },
  };
}
