// The console's build: Vite with Preact's JSX through esbuild (no plugin needed), served by the
// controller under /console/ from dist/ (scripts/setup.sh builds it; nothing is fetched at run time).
import { defineConfig } from "vite";

export default defineConfig({
  base: "/console/",
  esbuild: { jsx: "automatic", jsxImportSource: "preact" },
  build: { outDir: "dist", emptyOutDir: true, sourcemap: false, chunkSizeWarningLimit: 1024 },
});
