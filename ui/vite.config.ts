// Builds the UI into the server package (server/tracklane_server/ui_dist), which is committed and
// shipped as package data: `pip install tracklane` serves it with no Node. CI rebuilds it and fails
// on any difference, so the output must depend only on the sources and package-lock.json (no source
// maps with absolute paths, no timestamps, content-hashed file names).
import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

const preactCompat = fileURLToPath(new URL("./node_modules/preact/compat/", import.meta.url));

export default defineConfig({
  // TanStack's React adapters run on Preact through preact/compat (a few KB instead of React's ~45).
  resolve: {
    alias: {
      react: preactCompat,
      "react-dom": preactCompat,
      "react/jsx-runtime": "preact/jsx-runtime",
    },
  },
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: {
    outDir: "../server/tracklane_server/ui_dist",
    emptyOutDir: true,
    sourcemap: false,
    target: "es2022",
    reportCompressedSize: false, // scripts/bundle-size.mjs measures the initial load itself
    chunkSizeWarningLimit: 1200, // ECharts is one lazy chunk, loaded only by the Compare page
  },
  server: {
    // `npm run dev` against a running `tracklane server` (HTTP listener on 127.0.0.1:5000).
    proxy: {
      "/tracklane.v1.": "http://127.0.0.1:5000",
      "/auth": "http://127.0.0.1:5000",
      "/artifacts": "http://127.0.0.1:5000",
    },
  },
  test: {
    include: ["test/**/*.test.ts"],
    environment: "node",
  },
});
