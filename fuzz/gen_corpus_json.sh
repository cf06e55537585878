#!/bin/sh
# Writes the seed corpora of the JSON fuzz targets from what the tests use: fuzz/corpus/tokenizer
# gets every tokenizer.json tests/test_tokenizer.c builds (BV_FUZZ_SEED_DIR, tests/util/testutil.h)
# and a tiny tokenizer trained by `bitvla tokenizer train --bitvla`; fuzz/corpus/config gets every
# config.json tests/test_config.c parses and the committed fixtures tests/fixtures/*config*.json;
# fuzz/corpus/recipe every recipe tests/test_recipe.c parses and the committed recipes/*.json.
# Needs a release build (scripts/build).   fuzz/gen_corpus_json.sh
set -eu
cd "$(dirname "$0")/.."
for d in tokenizer config recipe; do
  rm -rf "fuzz/corpus/$d"
  mkdir -p "fuzz/corpus/$d"
done
BV_FUZZ_SEED_DIR=fuzz/corpus/tokenizer build/test_tokenizer >/dev/null 2>&1
BV_FUZZ_SEED_DIR=fuzz/corpus/config build/test_config >/dev/null 2>&1
cp tests/fixtures/*config*.json fuzz/corpus/config/
BV_FUZZ_SEED_DIR=fuzz/corpus/recipe build/test_recipe >/dev/null 2>&1
cp recipes/*.json fuzz/corpus/recipe/
head -c 3000 tests/tokenizer/corpus.jsonl >fuzz/corpus/train.txt.tmp
build/bitvla tokenizer train --text fuzz/corpus/train.txt.tmp --vocab-size 300 --bitvla \
  --out fuzz/corpus/tokenizer/trained_bitvla.json >/dev/null
rm -f fuzz/corpus/train.txt.tmp
echo "fuzz/corpus/tokenizer: $(ls fuzz/corpus/tokenizer | wc -l) files; fuzz/corpus/config: $(ls fuzz/corpus/config | wc -l) files;" \
  "fuzz/corpus/recipe: $(ls fuzz/corpus/recipe | wc -l) files"
