// `weft agent …` as installed (/usr/lib/weft/lib/agent.cjs, run by /usr/bin/weft): loads the
// agent's bundle, agent-bundle.cjs (cli/src/agent-main.ts and everything it imports, one CommonJS
// file), with the V8 code cache beside it, agent-bundle.code-cache, so that each start deserializes
// the agent's compiled modules instead of parsing and compiling them: about half of the CPU an agent
// spends loading its code (test/bench/README.md). Node.js 20 has no compile cache for ES modules,
// hence one CommonJS file run through vm.Script, which takes a cache.
//
// V8 accepts a cache only from the same V8 version and flags, and for the same source; otherwise it
// compiles as if there were none, and the agent logs that it started without its cache.
//
//   node <the launcher's agent flags> agent.cjs agent …    run the agent
//   node <the launcher's agent flags> agent.cjs --write-code-cache
//        load the bundle and write the cache (packaging/bundle.mjs, with the launcher's flags)
"use strict";
const { readFileSync, writeFileSync } = require("node:fs");
const { createRequire } = require("node:module");
const { join } = require("node:path");
const { Script } = require("node:vm");

const bundle = join(__dirname, "agent-bundle.cjs");
const cacheFile = join(__dirname, "agent-bundle.code-cache");

/**
 * Compiles the bundle (with the cache unless `withCache` is false) and runs its top level; returns
 * its exports, the script and what became of the cache. The cache's bytes are not kept: V8 has
 * what it needs once the script is compiled.
 */
function load(withCache) {
  let cachedData;
  if (withCache) {
    try {
      cachedData = readFileSync(cacheFile);
    } catch {
      // No cache: compiled below, and the agent says so.
    }
  }
  // The wrapper Node.js puts around a CommonJS module; it is part of the source the cache is for.
  const source = `(function (exports, require, module, __filename, __dirname) {${readFileSync(bundle, "utf8")}\n})`;
  const script = new Script(source, { filename: bundle, cachedData });
  const mod = { exports: {} };
  script.runInThisContext()(mod.exports, createRequire(bundle), mod, bundle, __dirname);
  return { exports: mod.exports, script, codeCache: cachedData === undefined ? "missing" : script.cachedDataRejected ? "rejected" : "used" };
}

if (process.argv[2] === "--write-code-cache") {
  const { exports, script } = load(false);
  // Once the bundle ran its modules' top level, and that of those the agent imports later: the
  // cache holds every function compiled so far.
  exports.importDeferred().then(() => {
    writeFileSync(cacheFile, script.createCachedData());
    process.exit(0);
  });
} else {
  const { exports, codeCache } = load(true);
  exports.main(process.argv, { codeCache });
}
