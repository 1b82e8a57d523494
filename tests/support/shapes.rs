// Text of strange shapes for the token estimate: what a caller could send to make a prompt look
// smaller than it is. Each class is generated from a seed, so the bodies are the same on every
// run.

/// A small deterministic generator (SplitMix64).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

fn chars_from(rng: &mut Rng, alphabet: &[char], n: usize) -> String {
    (0..n).map(|_| *rng.pick(alphabet)).collect()
}

fn range(lo: u32, hi: u32) -> Vec<char> {
    (lo..hi).filter_map(char::from_u32).collect()
}

/// About `size` bytes of text of class `kind`, from `seed`.
pub fn shape(kind: &str, size: usize, seed: u64) -> String {
    let mut rng = Rng::new(seed ^ (kind.len() as u64 * 0x1000_0001));
    let mut out = String::new();
    let ascii = |s: &str| s.chars().collect::<Vec<char>>();
    while out.len() < size {
        match kind {
            "base64" => {
                let a = ascii("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/");
                out.push_str(&chars_from(&mut rng, &a, 76));
                out.push('\n');
            }
            "hex" => {
                let a = ascii("0123456789abcdef");
                out.push_str(&chars_from(&mut rng, &a, 64));
                out.push(if rng.below(4) == 0 { '\n' } else { ' ' });
            }
            "punct-runs" => {
                let c = *rng.pick(&ascii("=-*#~_.!?+<>/|"));
                let n = 8 + rng.below(200);
                out.extend(std::iter::repeat_n(c, n));
                out.push(if rng.below(3) == 0 { '\n' } else { ' ' });
            }
            "punct-mixed" => {
                let a = ascii("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~");
                let n = 40 + rng.below(400);
                out.push_str(&chars_from(&mut rng, &a, n));
                out.push(' ');
            }
            "random-letters" => {
                let a = ascii("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ");
                let n = 20 + rng.below(2000);
                out.push_str(&chars_from(&mut rng, &a, n));
                out.push(' ');
            }
            "dna" => {
                out.push_str(&chars_from(&mut rng, &ascii("ACGT"), 60));
                out.push('\n');
            }
            "protein" => {
                out.push_str(&chars_from(&mut rng, &ascii("ACDEFGHIKLMNPQRSTVWY"), 60));
                out.push('\n');
            }
            "controls" => {
                let a: Vec<char> = (1u32..32)
                    .filter(|c| ![9, 10, 13].contains(c))
                    .filter_map(char::from_u32)
                    .chain(['\u{7f}'])
                    .collect();
                out.push_str(&chars_from(&mut rng, &a, 64));
                if rng.below(2) == 0 {
                    out.push_str("ok ");
                }
            }
            "braille" => {
                out.push_str(&chars_from(&mut rng, &range(0x2800, 0x2900), 40));
                out.push('\n');
            }
            "private-use" => {
                out.push_str(&chars_from(&mut rng, &range(0xE000, 0xF900), 40));
                out.push(' ');
            }
            "astral-private" => {
                out.push_str(&chars_from(&mut rng, &range(0xF0000, 0xF1000), 30));
                out.push(' ');
            }
            "ascii-art" => {
                let a = ascii("  /\\_|()'`.,-=:;oO0@#*+ ");
                let w = 30 + rng.below(50);
                out.push_str(&chars_from(&mut rng, &a, w));
                out.push('\n');
            }
            "box-drawing" => {
                out.push_str(&chars_from(&mut rng, &range(0x2500, 0x2580), 40));
                out.push('\n');
            }
            "emoji" => {
                let a = range(0x1F300, 0x1F650);
                for _ in 0..10 {
                    out.push(*rng.pick(&a));
                    match rng.below(6) {
                        0 => out.push('\u{200D}'),
                        1 => out.push('\u{1F3FD}'),
                        2 => out.push('\u{FE0F}'),
                        _ => {}
                    }
                }
                out.push(' ');
            }
            "flags" => {
                let a = range(0x1F1E6, 0x1F200);
                out.push_str(&chars_from(&mut rng, &a, 20));
                out.push(' ');
            }
            "cjk-random" => {
                out.push_str(&chars_from(&mut rng, &range(0x4E00, 0x9FA0), 40));
                out.push('\n');
            }
            "cyrillic-random" => {
                out.push_str(&chars_from(&mut rng, &range(0x0400, 0x0500), 40));
                out.push(' ');
            }
            "combining" => {
                let marks = range(0x0300, 0x0370);
                for _ in 0..20 {
                    out.push(*rng.pick(&ascii("aeiou")));
                    for _ in 0..rng.below(6) {
                        out.push(*rng.pick(&marks));
                    }
                }
                out.push(' ');
            }
            "whitespace" => {
                let a = ascii(" \t\r\n");
                out.push_str(&chars_from(&mut rng, &a, 64));
                out.push('x');
            }
            "digits" => {
                let n = 50 + rng.below(500);
                out.push_str(&chars_from(&mut rng, &ascii("0123456789"), n));
                out.push(*rng.pick(&ascii(" ,.\n")));
            }
            "numbers" => {
                out.push_str(&format!("{}", rng.next() % 100_000));
                out.push(*rng.pick(&ascii(",;| ")));
            }
            "uuids" => {
                let a = ascii("0123456789abcdef");
                let u: String = chars_from(&mut rng, &a, 32);
                out.push_str(&format!(
                    "{}-{}-{}-{}-{}\n",
                    &u[..8],
                    &u[8..12],
                    &u[12..16],
                    &u[16..20],
                    &u[20..]
                ));
            }
            _ => unreachable!("no shape {kind}"),
        }
    }
    out
}

/// Every class [`shape`] makes.
pub const SHAPES: &[&str] = &[
    "base64",
    "hex",
    "punct-runs",
    "punct-mixed",
    "random-letters",
    "dna",
    "protein",
    "controls",
    "braille",
    "private-use",
    "astral-private",
    "ascii-art",
    "box-drawing",
    "emoji",
    "flags",
    "cjk-random",
    "cyrillic-random",
    "combining",
    "whitespace",
    "digits",
    "numbers",
    "uuids",
];
