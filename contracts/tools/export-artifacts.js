#!/usr/bin/env node
// Writes out/<Contract>.json = { "abi": [...], "bytecode": "0x..." } for every contract the
// node deploys or talks to, from forge's build output (build/forge). These small files are
// committed: the Rust node generates its bindings from them, and CI rebuilds them and
// fails if they differ from the committed ones.
'use strict';
const fs = require('fs');
const path = require('path');

const CONTRACTS = [
  'LilypadToken',
  'LilypadUsers',
  'LilypadStorage',
  'LilypadPayments',
  'LilypadMediation',
  'LilypadOnChainJobCreator',
  'LilypadController',
  'ExampleClient',
];

const root = path.resolve(__dirname, '..');
const outDir = path.join(root, 'out');
fs.mkdirSync(outDir, { recursive: true });

for (const name of CONTRACTS) {
  const built = path.join(root, 'build', 'forge', `${name}.sol`, `${name}.json`);
  let artifact;
  try {
    artifact = JSON.parse(fs.readFileSync(built, 'utf8'));
  } catch (error) {
    console.error(`cannot read ${built}: ${error.message}\nrun \`forge build\` in contracts/ first`);
    process.exit(1);
  }
  const bytecode = artifact.bytecode && artifact.bytecode.object;
  if (!bytecode || bytecode === '0x') {
    console.error(`${built} has no bytecode`);
    process.exit(1);
  }
  const exported = { abi: artifact.abi, bytecode };
  fs.writeFileSync(path.join(outDir, `${name}.json`), JSON.stringify(exported, null, 2) + '\n');
  const size = (bytecode.length - 2) / 2;
  console.log(`out/${name}.json  (${size} bytes of init code)`);
}
