// Prints the gzipped size of what a first page load fetches (index.html's script, its static
// imports and stylesheets: lazy chunks excluded) and fails the build above the budget.
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";

const BUDGET_KB = 400;
const dist = new URL("../../server/tracklane_server/ui_dist/", import.meta.url).pathname;
const html = readFileSync(join(dist, "index.html"), "utf8");
const initial = new Set(["index.html"]);
for (const m of html.matchAll(/(?:src|href)="\/([^"]+\.(?:js|css))"/g)) initial.add(m[1]);

const gz = (name) => gzipSync(readFileSync(join(dist, name)), { level: 9 }).length;
const kb = (n) => (n / 1024).toFixed(1).padStart(7) + " KB";
let total = 0;
console.log("initial load (gzipped):");
for (const name of initial) {
  const size = gz(name);
  total += size;
  console.log(`  ${kb(size)}  ${name}`);
}
console.log(`  ${kb(total)}  total (budget ${BUDGET_KB} KB)`);
const lazy = readdirSync(join(dist, "assets")).filter((f) => !initial.has(`assets/${f}`));
const lazyTotal = lazy.reduce((sum, f) => sum + gz(`assets/${f}`), 0);
console.log(`lazy chunks: ${lazy.length}, ${kb(lazyTotal).trim()} gzipped`);
if (total > BUDGET_KB * 1024) {
  console.error(`initial bundle ${kb(total).trim()} is over the ${BUDGET_KB} KB budget`);
  process.exit(1);
}
