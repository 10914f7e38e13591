//! A language is a BCP 47 tag (RFC 5646): `en`, `ru`, `fr`, `zh`,
//! `zh-Hant`, `pt-BR`. What a station can show in it is data: the console
//! catalogues in `assets/lang` and each template's `[languages]`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The longest tag kept, in bytes. Tags in use are far shorter
/// (`zh-Hans-CN` is 10); the bound lets a language be `Copy`.
pub const MAX_TAG: usize = 23;

/// A well-formed BCP 47 language tag in its canonical case: language in
/// lowercase, script in title case, region in uppercase (`zh-Hant-TW`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Language {
    len: u8,
    bytes: [u8; MAX_TAG],
}

impl Language {
    pub const EN: Language = Language::lit("en");
    pub const RU: Language = Language::lit("ru");

    const fn lit(tag: &str) -> Language {
        let mut bytes = [0u8; MAX_TAG];
        let src = tag.as_bytes();
        let mut i = 0;
        while i < src.len() {
            bytes[i] = src[i];
            i += 1;
        }
        Language {
            len: src.len() as u8,
            bytes,
        }
    }

    /// The tag, as written on the wire and in files.
    pub fn code(&self) -> &str {
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("und")
    }

    /// The tag with its last subtag dropped (`zh-Hant-TW` → `zh-Hant`):
    /// the next tag an RFC 4647 lookup tries. None for a bare language.
    pub fn parent(&self) -> Option<Language> {
        let code = self.code();
        let cut = code.rfind('-')?;
        // A lone singleton (`x`, `u`) cannot end a tag: drop it too.
        let mut head = &code[..cut];
        if let Some(i) = head.rfind('-')
            && head.len() - i == 2
        {
            head = &head[..i];
        }
        Some(Language::lit(head))
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl fmt::Debug for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Language({})", self.code())
    }
}

/// Text that is not a well-formed BCP 47 language tag.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a language tag; write a BCP 47 tag such as \"en\", \"ru\", \"fr\", \"zh\" or \"pt-BR\""
)]
pub struct UnknownLanguage(pub String);

impl FromStr for Language {
    type Err = UnknownLanguage;

    /// Parses a tag as RFC 5646 §2.1 writes it (language, script, region,
    /// variants, extensions, private use), accepting `_` for `-` and any
    /// case, and returns it in canonical case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || UnknownLanguage(s.to_string());
        let text = s.trim().replace('_', "-");
        if text.is_empty() || text.len() > MAX_TAG {
            return Err(bad());
        }
        let mut out: Vec<String> = Vec::new();
        let mut parts = text.split('-').peekable();
        let first = parts.next().ok_or_else(bad)?;
        let alpha = |p: &str| p.bytes().all(|b| b.is_ascii_alphabetic());
        let alnum = |p: &str| p.bytes().all(|b| b.is_ascii_alphanumeric());
        // Primary subtags of five to eight letters are reserved and none is
        // registered: refusing them catches `english` for `en`.
        if !(alpha(first) && (2..=3).contains(&first.len())) {
            return Err(bad());
        }
        out.push(first.to_ascii_lowercase());
        // Where in the tag we are: 0 extlang/script, 1 region, 2 variants.
        let mut stage = 0;
        while let Some(p) = parts.next() {
            if p.is_empty() || !alnum(p) || p.len() > 8 {
                return Err(bad());
            }
            if p.len() == 1 {
                // An extension or private use: a singleton, then subtags.
                out.push(p.to_ascii_lowercase());
                let mut any = false;
                while let Some(q) = parts.peek() {
                    if q.is_empty() || !alnum(q) || q.len() > 8 {
                        return Err(bad());
                    }
                    if q.len() == 1 && p != "x" && p != "X" {
                        break;
                    }
                    out.push(q.to_ascii_lowercase());
                    parts.next();
                    any = true;
                }
                if !any {
                    return Err(bad());
                }
                stage = 3;
                continue;
            }
            if stage > 2 {
                return Err(bad());
            }
            if stage == 0 && p.len() == 4 && alpha(p) {
                let mut script = p.to_ascii_lowercase();
                script[..1].make_ascii_uppercase();
                out.push(script);
                stage = 1;
            } else if stage <= 1
                && (p.len() == 2 && alpha(p)
                    || p.len() == 3 && p.bytes().all(|b| b.is_ascii_digit()))
            {
                out.push(p.to_ascii_uppercase());
                stage = 2;
            } else if p.len() >= 5 || p.len() == 4 && p.as_bytes()[0].is_ascii_digit() {
                out.push(p.to_ascii_lowercase());
                stage = 2;
            } else {
                return Err(bad());
            }
        }
        let tag = out.join("-");
        Ok(Language::lit(&tag))
    }
}

impl Serialize for Language {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Language {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_read_in_canonical_case() {
        for (input, tag) in [
            ("en", "en"),
            ("RU", "ru"),
            ("zh-hant-tw", "zh-Hant-TW"),
            ("pt_br", "pt-BR"),
            ("es-419", "es-419"),
            ("sl-rozaj-biske", "sl-rozaj-biske"),
            ("en-x-twain", "en-x-twain"),
            ("de-CH-1901", "de-CH-1901"),
        ] {
            assert_eq!(input.parse::<Language>().unwrap().code(), tag, "{input}");
        }
    }

    #[test]
    fn malformed_tags_are_refused() {
        for input in [
            "",
            "e",
            "english-language",
            "en--us",
            "en-",
            "en-x",
            "en-US-Latn",
            "zh-Hant-Hans",
            "1a",
            "abcdefghij",
            "english",
            "en-GB-oxendict-of-a-very-long-kind",
        ] {
            assert!(input.parse::<Language>().is_err(), "{input}");
        }
    }

    #[test]
    fn lookup_drops_subtags_from_the_end() {
        let tag: Language = "zh-Hant-TW".parse().unwrap();
        let chain: Vec<String> = std::iter::successors(Some(tag), Language::parent)
            .map(|l| l.to_string())
            .collect();
        assert_eq!(chain, ["zh-Hant-TW", "zh-Hant", "zh"]);
        let private: Language = "en-a-bbb-x-ccc".parse().unwrap();
        assert_eq!(private.parent().unwrap().code(), "en-a-bbb");
    }
}
