// compare.js - line-by-line comparison for check_llama3.sh; prints the first mismatches and exits 1.
//   node compare.js ids CORPUS.jsonl OURS.jsonl THEIRS.jsonl NAME   token-id arrays, ours vs NAME's
//   node compare.js text CORPUS.jsonl DECODED.jsonl [PREFIX]       decode(encode(s)) == PREFIX + s
'use strict';
const fs = require('fs');
const read = (p) => fs.readFileSync(p, 'utf8').split('\n').filter((l) => l.length > 0);
const [mode, corpusPath, aPath, bPath, name] = process.argv.slice(2);
const corpus = read(corpusPath);
const a = read(aPath);
let bad = 0;
if (mode === 'ids') {
  const b = read(bPath);
  if (a.length !== corpus.length || b.length !== corpus.length) {
    console.error(`compare: ${corpus.length} strings but ${a.length} id lines from bitvla and ${b.length} from ${name}`);
    process.exit(1);
  }
  for (let i = 0; i < corpus.length; i++) {
    if (a[i] === b[i]) continue;
    if (bad < 5) {
      const x = JSON.parse(a[i]), y = JSON.parse(b[i]);
      let k = 0;
      while (k < x.length && k < y.length && x[k] === y[k]) k++;
      console.error(`MISMATCH line ${i + 1}: ${corpus[i].slice(0, 300)}\n  first difference at token ${k}\n` +
                    `  bitvla: ${a[i].slice(0, 400)}\n  ${name}: ${b[i].slice(0, 400)}`);
    }
    bad++;
  }
  console.log(`${name}: ${corpus.length - bad} of ${corpus.length} strings give identical ids`);
} else if (mode === 'text') {
  const prefix = bPath || '';
  if (a.length !== corpus.length) {
    console.error(`compare: ${corpus.length} strings but ${a.length} decoded lines`);
    process.exit(1);
  }
  for (let i = 0; i < corpus.length; i++) {
    const want = prefix + JSON.parse(corpus[i]), got = JSON.parse(a[i]);
    if (want === got) continue;
    if (bad < 5) console.error(`ROUND TRIP line ${i + 1}: want ${JSON.stringify(want).slice(0, 300)}\n  got ${JSON.stringify(got).slice(0, 300)}`);
    bad++;
  }
  console.log(`round trip: ${corpus.length - bad} of ${corpus.length} strings decode back exactly`);
} else {
  console.error('usage: compare.js ids|text ...');
  process.exit(2);
}
process.exit(bad ? 1 : 0);
