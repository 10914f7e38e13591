//! The security label policy (`[labels]` in operator.toml): the markings a
//! message may carry, lowest first, the one a message gets when its writer
//! chooses none, and (per peer, `max_label`) the highest a peer may receive.
//! The 1987 agreement on the centres makes their traffic confidential by
//! default, so that is the default policy's default.

use super::Checker;
use super::raw::{RawLabels, S};

/// The longest marking accepted.
const MAX_MARKING: usize = 64;

/// The markings this station knows, in order, and its default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelPolicy {
    /// Lowest first.
    pub markings: Vec<String>,
    pub default: String,
}

impl Default for LabelPolicy {
    fn default() -> Self {
        LabelPolicy {
            markings: vec!["UNCLASSIFIED".into(), "CONFIDENTIAL".into()],
            default: "CONFIDENTIAL".into(),
        }
    }
}

impl LabelPolicy {
    /// Where `label` stands (0 is the lowest), if this policy knows it.
    pub fn rank(&self, label: &str) -> Option<usize> {
        self.markings.iter().position(|m| m == label)
    }

    /// The markings, as a person reads them in an error.
    pub fn listed(&self) -> String {
        self.markings
            .iter()
            .map(|m| format!("\"{m}\""))
            .collect::<Vec<_>>()
            .join(" < ")
    }
}

impl Checker<'_> {
    pub(super) fn labels(&mut self, raw: &RawLabels) -> LabelPolicy {
        let fallback = LabelPolicy::default();
        let Some(list) = &raw.markings else {
            if let Some(d) = &raw.default {
                return match fallback.rank(d.get_ref()) {
                    Some(_) => LabelPolicy {
                        default: d.get_ref().clone(),
                        ..fallback
                    },
                    None => {
                        self.err(
                            Some(d.span()),
                            "labels.default",
                            format!("is not one of the markings ({})", fallback.listed()),
                        );
                        fallback
                    }
                };
            }
            return fallback;
        };
        let mut markings: Vec<String> = Vec::new();
        for m in list {
            let text = m.get_ref().trim();
            if text.is_empty() || text.len() > MAX_MARKING || text.chars().any(char::is_control) {
                self.err(
                    Some(m.span()),
                    "labels.markings",
                    format!("a marking is plain text of 1 to {MAX_MARKING} bytes, such as \"CONFIDENTIAL\""),
                );
            } else if markings.iter().any(|x| x == text) {
                self.err(
                    Some(m.span()),
                    "labels.markings",
                    format!("`{text}` is listed twice"),
                );
            } else {
                markings.push(text.to_string());
            }
        }
        if markings.is_empty() {
            self.err(
                None,
                "labels.markings",
                "list at least one marking, lowest first, such as [\"UNCLASSIFIED\", \"CONFIDENTIAL\"]",
            );
            return fallback;
        }
        let policy = LabelPolicy {
            default: markings[markings.len() - 1].clone(),
            markings,
        };
        match &raw.default {
            None => policy,
            Some(d) => self
                .marking(&policy, d, "labels.default")
                .map_or(policy.clone(), |default| LabelPolicy { default, ..policy }),
        }
    }

    /// A marking named in the config, checked against `policy`.
    pub(super) fn marking(
        &mut self,
        policy: &LabelPolicy,
        v: &S<String>,
        key: &str,
    ) -> Option<String> {
        match policy.rank(v.get_ref().trim()) {
            Some(i) => Some(policy.markings[i].clone()),
            None => {
                self.err(
                    Some(v.span()),
                    key,
                    format!(
                        "`{}` is not one of the markings ({})",
                        v.get_ref(),
                        policy.listed()
                    ),
                );
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_policy_is_confidential() {
        let p = LabelPolicy::default();
        assert_eq!(p.default, "CONFIDENTIAL");
        assert!(p.rank("UNCLASSIFIED") < p.rank("CONFIDENTIAL"));
        assert_eq!(p.rank("SECRET"), None);
    }
}
