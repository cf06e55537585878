#!/usr/bin/env python3
"""Generate the tokenizer parity corpora (deterministic; stdlib only).

  tests/tokenizer/corpus.jsonl          >= 2,000 strings: our ids must equal both JavaScript encoders'
                                        (transformers.js via @lenml/tokenizers, and HF's Rust library
                                        via the `tokenizers` npm package) on the Llama-3 tokenizer.json
  tests/tokenizer/corpus_hf_only.jsonl  strings around U+0085, U+FEFF and U+017F, where the JavaScript
                                        regex of transformers.js can depart from HF's Rust library (its \\s
                                        is not Unicode White_Space: two of these strings differ); compared
                                        with HF's Rust only

One JSON string per line. Rerun after editing: /usr/bin/python3 tests/tokenizer/gen_corpus.py
"""
import json
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))
rng = random.Random(20250607)

WORDS = """the robot arm picks up a red block and places it in the bowl while the camera watches
quickly slowly open close drawer gripper table kitchen stove mug plate spoon left right top bottom
language model vision action policy token tokenizer training loss gradient ternary weight scale
because however therefore although meanwhile nevertheless approximately international""".split()
PUNCT = list(".,;:!?-()[]{}\"'/\\@#$%^&*_+=<>|~`")
CONTRACTIONS = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d"]

LATIN_ACCENTED = "àáâãäåæçèéêëìíîïñòóôõöøùúûüýÿĀāĂăĄąĆćČčĎďĒēĘęĚěĞğĪīİıŁłŃńŇňŌōŐőŒœŘřŚśŠšŢţŤťŪūŮůŰűŹźŻżŽžßÆØÅ"
COMBINING = ["\u0301", "\u0300", "\u0302", "\u0308", "\u0303", "\u0327", "\u030a", "\u0323", "\u0331", "\u20dd"]
CJK = "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可她里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同三已老从动两长知民样现分将外但身些与高意进把法此实回二理美点月明其种声全工己话儿者向情部正名定女问力机给等几很业最间新什打便位因重被走电四第门相次东政海口使教西再平真听世气信北少关并内加化由却代军产入先山五太水万市眼体别处总才场师书比住员九笑性通目华报立马命张活难神数件安表原车白应路期叫死常提感金何更反合放做系计或司利受光王果亲界及今京务制解各任至清物台象记边共风战干接它许八特觉望直服毛林题建南度统色字请交爱让认算论百吃义科怎元社术结六功指思非流每青管夫连远资队跟带花快条院变联言权往展该领传近留红治决周保达办运武半候七必城父强步完革深区即求品士转量空甚众技轻程告江语英基派满式李息写呢识极令黄德收脸钱党倒未持取设始版双历越史商千片容研像找友孩站广改议形委早房音火际则首单据导影失拿网香似斯专石若兵弟谁校读志飞观争究包组造落视济喜离虽坏兴"
HIRAGANA = "あいうえおかきくけこさしすせそたちつてとなにぬねのはひふへほまみむめもやゆよらりるれろわをんがぎぐげござじずぜぞだぢづでどばびぶべぼぱぴぷぺぽゃゅょっー"
KATAKANA = "アイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロワヲンガギグゲゴロボット"
HANGUL = "가나다라마바사아자차카타파하각난닫랄맘밥삿앙잦찿캌탙팦핳로봇언어모델행동한국어입니다"
ARABIC = "ابتثجحخدذرزسشصضطظعغفقكلمنهوي"
ARABIC_MARKS = ["\u064b", "\u064e", "\u064f", "\u0650", "\u0651", "\u0652"]
DEVANAGARI_CONS = "कखगघङचछजझञटठडढणतथदधनपफबभमयरलवशषसह"
DEVANAGARI_SIGNS = ["ा", "ि", "ी", "ु", "ू", "े", "ै", "ो", "ौ", "ं", "ः", "्", "ँ"]
GREEK_CYRILLIC = "αβγδεζηθικλμνξοπρστυφχψωΑΒΓΔΩπσςабвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВГДЖЗИЙЯ"
OTHER_SCRIPTS = "שלוםעבריתสวัสดีภาษาไทยᏣᎳᎩԱբգდასαἀἁὐῶ"
EMOJI = ["😀", "😂", "🤖", "🦾", "👍", "👍🏽", "👍🏿", "❤️", "🔥", "✨", "🎉", "🚀", "🌍", "🍕", "🐍", "🦀", "💡", "📦",
         "👨\u200d👩\u200d👧\u200d👦", "👩\u200d💻", "🧑\u200d🚀", "🏳️\u200d🌈", "👁️\u200d🗨️", "🇫🇷", "🇯🇵", "🇺🇸", "1️⃣", "#️⃣",
         "☺", "✌️", "🫠", "🤌🏼", "❤\u200d🔥", "😶\u200d🌫️"]
SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>",
            "<|reserved_special_token_0|>", "<|reserved_special_token_5|>", "<|reserved_special_token_250|>",
            "<|finetune_right_pad_id|>", "<|eom_id|>", "<|python_tag|>"]
NEAR_SPECIALS = ["<|eot_id", "<|eot_id|", "eot_id|>", "<|EOT_ID|>", "<|image_pad|>", "<proprio_pad>", "<action_12>",
                 "<|pad|>", "< |eot_id|>", "<<|eot_id|>>", "<|begin_of_text|><|begin_of_text|>",
                 "<|reserved_special_token_256|>", "<|", "|>", "<||>"]
# white space that every implementation treats alike (U+180E and U+200B are not White_Space)
SPACES = [" ", "  ", "   ", "\t", "\t\t", "\n", "\n\n", "\r\n", "\r", " \n", "\n ", "\u00a0", "\u3000", "\u2028",
          "\u2029", "\u2003", "\u202f", "\u180e", "\u200b", "\u000b", "\u000c", " \t \n"]
CODE = [
    'int main(int argc, char **argv) {\n    printf("hello, %s\\n", argv[0]);\n    return 0;\n}\n',
    'def f(x):\n\treturn [i ** 2 for i in range(x) if i % 3 != 0]\n\nprint(f(10))\n',
    'const xs = [1, 2, 3].map((x) => x * 2); // doubles\nconsole.log(`sum=${xs.reduce((a, b) => a + b, 0)}`);\n',
    '{"name": "bitvla", "version": "0.1.0", "deps": {"jansson": ">=2.14", "pcre2": "10.42"}, "ok": true}',
    '<html>\n  <body class="main">\n    <p>Hello &amp; welcome</p>\n  </body>\n</html>\n',
    'for f in *.c; do gcc -O2 -Wall -c "$f" -o "${f%.c}.o" || exit 1; done',
    'SELECT id, name FROM users WHERE age >= 18 AND name LIKE \'%son\' ORDER BY id DESC LIMIT 10;',
    '    if (x != NULL && x->next) {\n        x = x->next;\n    } else {\n        return -1;\n    }\n',
    'fn main() {\n    let v: Vec<u32> = (0..10).filter(|x| x % 2 == 0).collect();\n    println!("{:?}", v);\n}\n',
    '#include <stdio.h>\n#define MAX(a, b) ((a) > (b) ? (a) : (b))\n',
    'x = torch.randn(2, 3, dtype=torch.float64)\ny = (x @ x.T).sum(dim=-1, keepdim=True)\n',
    '$ ./build/bitvla tokenize --tokenizer tok.json --jsonl in.jsonl > out.jsonl\n',
    'a=1;b=2;c=a+b;if(c>2){return c;}else{return 0;}',
    '// TODO(user): fix this!!!\n/* multi\n   line */\n',
    'key:\n  - item1\n  - item2\n  nested:\n    deep: value # comment\n',
]


def pick(s):
    return s[rng.randrange(len(s))]


def prose(nwords):
    out = []
    for i in range(nwords):
        w = pick(WORDS)
        r = rng.random()
        if r < 0.1:
            w = w.capitalize()
        elif r < 0.13:
            w = w.upper()
        out.append(w)
        if rng.random() < 0.12:
            out[-1] += pick(".,;:!?")
    return " ".join(out)


def number(ndigits):
    return str(rng.randrange(10 ** (ndigits - 1) if ndigits > 1 else 0, 10 ** ndigits))


def mixed_piece():
    k = rng.randrange(14)
    if k == 0:
        return prose(rng.randint(1, 6))
    if k == 1:
        return number(rng.randint(1, 12))
    if k == 2:
        return pick(SPACES)
    if k == 3:
        return "".join(pick(LATIN_ACCENTED) for _ in range(rng.randint(1, 6)))
    if k == 4:
        return "".join(pick(CJK) for _ in range(rng.randint(1, 8)))
    if k == 5:
        return "".join(pick(HIRAGANA + KATAKANA) for _ in range(rng.randint(1, 8)))
    if k == 6:
        return "".join(pick(ARABIC) + (pick(ARABIC_MARKS) if rng.random() < 0.3 else "") for _ in range(rng.randint(1, 8)))
    if k == 7:
        return "".join(pick(DEVANAGARI_CONS) + (pick(DEVANAGARI_SIGNS) if rng.random() < 0.6 else "")
                       for _ in range(rng.randint(1, 6)))
    if k == 8:
        return "".join(pick(EMOJI) for _ in range(rng.randint(1, 4)))
    if k == 9:
        return pick(PUNCT) * rng.randint(1, 3)
    if k == 10:
        return pick(pick(["xyz", "dont", "I", "we", "THEY", "it"])) + pick(CONTRACTIONS)
    if k == 11:
        return pick(GREEK_CYRILLIC + OTHER_SCRIPTS) * rng.randint(1, 3)
    if k == 12:
        return pick(SPECIALS + NEAR_SPECIALS)
    return "".join(pick(HANGUL) for _ in range(rng.randint(1, 5)))


def corpus():
    c = []
    # fixed cases first
    c += ["", " ", "a", "A", "Hello world", "Hello, world!", "hello\nworld", "  leading", "trailing  ", "\n", "\t",
          "\r\n", "   ", "\n\n\n", " \n \n ", "a  b   c    d", "\u00a0", "x\u3000y", "\u0000", "a\u0000b", "\u007f",
          "\u0001\u0002\u001f", "\u0080\u009f", "\u00ad", "\u200d", "\ufffd", "\U0010fffd", "\U0001f600", "e\u0301",
          "\u0301", "caf\u00e9 / cafe\u0301", "\u1e9b\u0323", "Z\u0351\u0362\u0327a\u0310\u0300l\u035dgo\u0363"]
    for ch in ["\u180e", "\u200b", "\u2028", "\u2029", "\u2003", "\u202f", "\u205f", "\u1680", "\u000b", "\u000c",
               "\u001c", "\u001d", "\u001e", "\u001f"]:
        c += [ch, "a" + ch + "b", ch + ch + "x", " " + ch + " ", ch + "\n"]
    # ASCII prose
    for _ in range(300):
        c.append(prose(rng.randint(1, 40)))
    # code
    for s in CODE:
        c.append(s)
        c.append(s.replace("    ", "\t"))
        c.append(s.replace("\n", "\r\n"))
    for _ in range(60):
        a, b = pick(CODE), pick(CODE)
        c.append(a[: rng.randrange(len(a) + 1)] + b[rng.randrange(len(b)):])
    # numbers of 1..12 digits, alone and in context
    for nd in range(1, 13):
        for _ in range(12):
            n = number(nd)
            c.append(pick([n, " " + n, n + " ", "x" + n, n + "x", "$" + n + ".99", "-" + n, n + "," + number(3),
                           n + "." + number(rng.randint(1, 6)), "(" + n + ")", n + "%", "v" + n + "." + number(1)]))
    c += ["1234567890123", "3.14159265358979", "1e-8", "0x7fffffff", "1,000,000", "2025-06-07T12:34:56Z",
          "+1 (555) 123-4567", "١٢٣٤٥", "१२३४५", "一二三", "①②③", "Ⅻ", "½ ¾", "²³", "٣.١٤"]
    # runs of spaces, tabs and newlines
    for _ in range(150):
        parts = []
        for _ in range(rng.randint(1, 6)):
            parts.append(pick(SPACES) * rng.randint(1, 5))
            if rng.random() < 0.6:
                parts.append(pick(WORDS + ["x", "1", "!", "é", "中"]))
        c.append("".join(parts))
    for n in [1, 2, 3, 4, 7, 8, 15, 16, 31, 64, 100]:
        c += [" " * n, "\t" * n, "\n" * n, " " * n + "x", "x" + " " * n, "x" + " " * n + "y", (" \n") * n]
    # contractions, both cases
    for _ in range(120):
        w = pick(["I", "you", "we", "they", "it", "he", "she", "don", "can", "won", "that", "there"])
        ct = pick(CONTRACTIONS)
        form = rng.randrange(4)
        if form == 1:
            w, ct = w.upper(), ct.upper()
        elif form == 2:
            ct = "".join(ch.upper() if rng.random() < 0.5 else ch for ct_ in [ct] for ch in ct_)
        elif form == 3:
            w = w.capitalize()
        c.append(pick(["", "so ", "\n", "'"]) + w + ct + pick(["", " go", "?", "'", "s", "\n", "t"]))
    c += ["'s", "'S", "'t", "'T", "'re", "'RE", "'Re", "'rE", "'ve", "'VE", "'m", "'M", "'ll", "'LL", "'lL", "'d", "'D",
          "''s", "'''", "it's' 'tis", "rock'n'roll", "O'Neil's", "'sss", "'lll", "'dd", "'x", "Ma'am", "don’t (curly)"]
    # accented and combining
    for _ in range(120):
        w = []
        for _ in range(rng.randint(1, 8)):
            if rng.random() < 0.5:
                w.append(pick(LATIN_ACCENTED))
            else:
                w.append(pick("aeiouncyzAEIOU") + "".join(pick(COMBINING) for _ in range(rng.randint(1, 3))))
            if rng.random() < 0.2:
                w.append(" ")
        c.append("".join(w))
    c += ["Tiếng Việt có dấu", "Ελληνικά κείμενα", "Русский текст, ёж!", "Ærøskøbing", "Straße", "ﬁnancial ﬂow",
          "Ǆemal ǅ ǆ", "ᾼ ῌ ῼ", "İstanbul ılık", "ŉ", "ǰ"]
    # CJK, Arabic, Devanagari and other scripts
    for _ in range(100):
        c.append("".join(pick(CJK) for _ in range(rng.randint(1, 30))) + pick(["", "。", "，", "！", "？", "\n"]))
    for _ in range(60):
        c.append("".join(pick(HIRAGANA + KATAKANA + CJK) for _ in range(rng.randint(1, 25))) + pick(["", "。", "、"]))
    for _ in range(40):
        c.append("".join(pick(HANGUL) for _ in range(rng.randint(1, 12))) + pick(["", " ", ".", "?"]))
    for _ in range(80):
        words = ["".join(pick(ARABIC) + (pick(ARABIC_MARKS) if rng.random() < 0.3 else "")
                         for _ in range(rng.randint(1, 7))) for _ in range(rng.randint(1, 6))]
        c.append(" ".join(words) + pick(["", "؟", "،", ".", " 123"]))
    for _ in range(80):
        words = ["".join(pick(DEVANAGARI_CONS) + (pick(DEVANAGARI_SIGNS) if rng.random() < 0.6 else "")
                         for _ in range(rng.randint(1, 6))) for _ in range(rng.randint(1, 6))]
        c.append(" ".join(words) + pick(["", "।", "?", " १२"]))
    c += ["中文 English 混合 text", "日本語のテキストです。", "한국어 텍스트입니다", "مرحبا بالعالم", "नमस्ते दुनिया",
          "สวัสดีชาวโลก", "שלום עולם", "Γειά σου Κόσμε", "Привет, мир", "ᏣᎳᎩ ᎦᏬᏂᎯᏍᏗ"]
    # emoji, including ZWJ sequences, flags, keycaps, skin tones
    for _ in range(120):
        parts = []
        for _ in range(rng.randint(1, 6)):
            parts.append(pick(EMOJI))
            if rng.random() < 0.4:
                parts.append(pick([" ", "", "!", " ok ", "\n", "a"]))
        c.append("".join(parts))
    # text that contains special-token text
    for _ in range(120):
        parts = []
        for _ in range(rng.randint(1, 5)):
            r = rng.random()
            if r < 0.35:
                parts.append(pick(SPECIALS))
            elif r < 0.55:
                parts.append(pick(NEAR_SPECIALS))
            else:
                parts.append(pick([prose(rng.randint(1, 4)), " ", "\n", "", pick(CJK), pick(EMOJI), number(3)]))
        c.append("".join(parts))
    c += ["System: A chat between a curious human and an artificial intelligence assistant.<|eot_id|>User: hi<|eot_id|>"
          "Assistant: ", "<|begin_of_text|>", "<|eot_id|><|eot_id|>", " <|eot_id|> ", "\n<|eot_id|>\n"]
    # mixed random strings
    while len(c) < 2400:
        c.append("".join(mixed_piece() for _ in range(rng.randint(1, 12))))
    return c


def corpus_hf_only():
    c = []
    for ch in ["\u0085", "\ufeff"]:
        c += [ch, "a" + ch + "b", " " + ch, ch + " ", ch + ch, "x " + ch + "\n", ch + "\n\n", "word" + ch + ch + "word",
              "1" + ch + "2", "!" + ch, ch + "'s"]
    c += ["Hello world's \u0085x\ufeffy  123456", "'\u017f", "'\u017ft", "it'\u017f", "'\u017f\u017f", "'S'\u017f's"]
    return c


def write(name, strings):
    with open(os.path.join(HERE, name), "w", encoding="utf-8") as f:
        for s in strings:
            f.write(json.dumps(s, ensure_ascii=False) + "\n")


def bench_text(megabytes, path):
    """Mixed text for scripts/bench-tokenizer: documents of prose, code, numbers and other scripts."""
    total = 0
    with open(path, "w", encoding="utf-8") as f:
        while total < megabytes * 1e6:
            parts = []
            for _ in range(rng.randint(20, 60)):
                r = rng.random()
                if r < 0.55:
                    parts.append(prose(rng.randint(5, 60)) + pick([" ", "\n", "\n\n", ". "]))
                elif r < 0.7:
                    parts.append(pick(CODE))
                else:
                    parts.append(mixed_piece() + pick([" ", "\n"]))
            doc = "".join(parts)
            total += len(doc.encode("utf-8"))
            f.write(json.dumps(doc, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    import sys
    if len(sys.argv) == 4 and sys.argv[1] == "--bench":
        bench_text(float(sys.argv[2]), sys.argv[3])
        sys.exit(0)
    c = corpus()
    assert len(c) >= 2000
    write("corpus.jsonl", c)
    write("corpus_hf_only.jsonl", corpus_hf_only())
    print(f"corpus.jsonl: {len(c)} strings; corpus_hf_only.jsonl: {len(corpus_hf_only())} strings")
