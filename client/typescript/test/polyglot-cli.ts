// Drives the TypeScript client from tests/e2e/test_polyglot.py; prints one JSON object.
//   node dist/test/polyglot-cli.js upload HOST:PORT RUN_ID ARTIFACT_PATH LOCAL_FILE
import { createReadStream, statSync } from "node:fs";

import { TracklaneClient } from "../src/index.js";

const [command, address, runId, path, file] = process.argv.slice(2);
if (command !== "upload" || !file) {
  console.error("usage: polyglot-cli.js upload HOST:PORT RUN_ID ARTIFACT_PATH LOCAL_FILE");
  process.exit(2);
}
const client = await TracklaneClient.connect(address);
try {
  const info = await client.uploadArtifact(runId, path, createReadStream(file), { size: statSync(file).size });
  console.log(JSON.stringify({ path: info.path, size: info.size, sha256: info.sha256 }));
} finally {
  client.close();
}
