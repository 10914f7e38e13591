//! Operator authentication: passphrase checked against the argon2id hash in
//! operator.toml, with a lockout per name after repeated failures (other
//! operators can still log in). Every attempt is audited by callers.
//!
//! What an attempt can learn or cost is bounded: an attempt is reserved
//! against the lockout before its passphrase is checked, so attempts made
//! in parallel stop at the limit too; a name that is no operator's is
//! checked against a decoy hash of the same cost, and is locked out in the
//! same way, so neither timing nor lockout tells which names exist; such
//! names are remembered only up to [`MAX_STRANGE_NAMES`]; and one check
//! runs at a time, so parallel attempts cannot multiply argon2's memory.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use age::secrecy::SecretString;

use crate::config::Config;
use crate::domain::OperatorName;
use crate::passphrase;

/// How many names that are no operator's have their failures remembered;
/// beyond it, the longest quiet is forgotten.
pub const MAX_STRANGE_NAMES: usize = 1024;

/// Why a log-in was refused. The message never says which part was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("unknown operator or wrong passphrase")]
    Denied,
    #[error("operator {name} is locked out after repeated failures; try again in {}s", .remaining.as_secs().max(1))]
    LockedOut { name: String, remaining: Duration },
}

struct Failures {
    count: u32,
    /// Attempts reserved and still being checked.
    checking: u32,
    locked_until: Option<Instant>,
    last: Instant,
}

impl Failures {
    fn new(now: Instant) -> Self {
        Failures {
            count: 0,
            checking: 0,
            locked_until: None,
            last: now,
        }
    }
}

/// What a typed name is remembered as: cut one character past the
/// longest name, so a remembered name costs a bounded number of bytes, and
/// a name too long to be anyone's stays too long to be an operator's.
fn remembered_as(name: &str) -> &str {
    match name.char_indices().nth(crate::domain::MAX_NAME + 1) {
        Some((at, _)) => &name[..at],
        None => name,
    }
}

/// Checks operators against the config.
pub struct Authenticator {
    operators: HashMap<String, String>,
    /// Checked in place of a hash for a name that is no operator's.
    decoy: String,
    limit: u32,
    lockout: Duration,
    failures: Mutex<HashMap<String, Failures>>,
    /// Held for each argon2 check.
    checking: Mutex<()>,
}

impl Authenticator {
    pub fn new(config: &Config) -> Self {
        Authenticator {
            operators: config
                .operators
                .iter()
                .map(|o| (o.name.to_string(), o.passphrase_hash.clone()))
                .collect(),
            decoy: passphrase::decoy(config.operators.first().map(|o| o.passphrase_hash.as_str())),
            limit: config.console.lockout_after.max(1),
            lockout: config.console.lockout_for,
            failures: Mutex::new(HashMap::new()),
            checking: Mutex::new(()),
        }
    }

    /// Checks `name` and `passphrase`. Slow on purpose (argon2id): call it
    /// off the UI thread.
    pub fn check(&self, name: &str, passphrase: &SecretString) -> Result<OperatorName, AuthError> {
        let name = remembered_as(name);
        self.reserve(name, Instant::now())?;
        let known = self.operators.get(name);
        let matches = {
            let _one = self.checking.lock().unwrap_or_else(PoisonError::into_inner);
            passphrase::verify(passphrase, known.unwrap_or(&self.decoy))
        };
        let now = Instant::now();
        let mut failures = self.failures();
        let verdict = match OperatorName::new(name) {
            Ok(operator) if known.is_some() && matches => Ok(operator),
            _ => Err(AuthError::Denied),
        };
        if verdict.is_ok() {
            failures.remove(name);
        } else if let Some(f) = failures.get_mut(name) {
            f.checking = f.checking.saturating_sub(1);
            f.count = f.count.saturating_add(1);
            f.last = now;
            if f.count >= self.limit {
                f.locked_until = Some(now + self.lockout);
            }
        }
        verdict
    }

    /// Counts an attempt by `name` before it is checked, or refuses it as
    /// locked out: by an earlier lockout, or because the attempts already
    /// failed and those still being checked reach the limit.
    fn reserve(&self, name: &str, now: Instant) -> Result<(), AuthError> {
        let mut failures = self.failures();
        if !failures.contains_key(name)
            && !self.operators.contains_key(name)
            && failures
                .keys()
                .filter(|n| !self.operators.contains_key(*n))
                .count()
                >= MAX_STRANGE_NAMES
        {
            let quietest = failures
                .iter()
                .filter(|(n, f)| !self.operators.contains_key(*n) && f.checking == 0)
                .min_by_key(|(_, f)| f.last)
                .map(|(n, _)| n.clone());
            match quietest {
                Some(n) => {
                    failures.remove(&n);
                }
                None => return Err(self.locked(name, self.lockout)),
            }
        }
        let f = failures
            .entry(name.to_string())
            .or_insert_with(|| Failures::new(now));
        if let Some(until) = f.locked_until {
            if until > now {
                return Err(self.locked(name, until - now));
            }
            *f = Failures::new(now);
        }
        if f.count.saturating_add(f.checking) >= self.limit {
            return Err(self.locked(name, self.lockout));
        }
        f.checking += 1;
        f.last = now;
        Ok(())
    }

    fn locked(&self, name: &str, remaining: Duration) -> AuthError {
        AuthError::LockedOut {
            name: crate::sanitize::inert(&name.chars().take(64).collect::<String>()),
            remaining,
        }
    }

    fn failures(&self) -> std::sync::MutexGuard<'_, HashMap<String, Failures>> {
        self.failures.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many names have failures remembered.
    #[cfg(test)]
    fn remembered(&self) -> usize {
        self.failures().len()
    }

    #[cfg(test)]
    fn bytes_remembered(&self) -> usize {
        self.failures().keys().map(String::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::PasswordHasher;

    const RIGHT: &str = "right passphrase";

    /// A station with operator `op`, whose hash is cheap (argon2's least
    /// cost) so that the tests are quick; the decoy copies that cost.
    fn authenticator() -> Authenticator {
        let params = argon2::Params::new(8, 1, 1, None).expect("params");
        let hash = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
            .hash_password(RIGHT.as_bytes())
            .expect("hash")
            .to_string();
        let text = format!(
            "[station]\nname = \"WASHINGTON\"\n\n[console]\nlockout_after = 3\n\n\
             [[operators]]\nname = \"op\"\nclearance = \"TEST\"\npassphrase_hash = \"{hash}\"\n"
        );
        let config = Config::parse(&text, std::path::Path::new("operator.toml")).expect("config");
        Authenticator::new(&config)
    }

    fn pass(text: &str) -> SecretString {
        SecretString::from(text.to_string())
    }

    #[test]
    fn an_operator_is_locked_out_and_a_stranger_just_the_same() {
        let auth = authenticator();
        assert!(auth.check("op", &pass(RIGHT)).is_ok(), "the control");
        for name in ["op", "nobody"] {
            for _ in 0..3 {
                assert_eq!(auth.check(name, &pass("wrong")), Err(AuthError::Denied));
            }
            assert!(
                matches!(
                    auth.check(name, &pass(RIGHT)),
                    Err(AuthError::LockedOut { .. })
                ),
                "{name}"
            );
        }
    }

    #[test]
    fn parallel_attempts_stop_at_the_limit() {
        let auth = authenticator();
        let results: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..12)
                .map(|_| s.spawn(|| auth.check("op", &pass("wrong"))))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("thread"))
                .collect()
        });
        let denied = results
            .iter()
            .filter(|r| **r == Err(AuthError::Denied))
            .count();
        assert_eq!(denied, 3, "only the limit is ever checked: {results:?}");
        assert!(matches!(
            auth.check("op", &pass(RIGHT)),
            Err(AuthError::LockedOut { .. })
        ));
    }

    #[test]
    fn strange_names_are_remembered_only_up_to_the_bound() {
        let auth = authenticator();
        for i in 0..MAX_STRANGE_NAMES + 500 {
            let _ = auth.check(&format!("n{i}"), &pass("wrong"));
        }
        assert_eq!(auth.remembered(), MAX_STRANGE_NAMES);
        let long = format!("{}{}", "x".repeat(1 << 20), 1);
        assert_eq!(auth.check(&long, &pass("wrong")), Err(AuthError::Denied));
        assert!(
            auth.bytes_remembered() <= MAX_STRANGE_NAMES * 4 * (crate::domain::MAX_NAME + 1),
            "a 1 MiB name is remembered cut short: {} bytes",
            auth.bytes_remembered()
        );
        let _ = auth.check("op", &pass("wrong"));
        assert_eq!(
            auth.remembered(),
            MAX_STRANGE_NAMES + 1,
            "an operator's failures are always remembered"
        );
    }
}
