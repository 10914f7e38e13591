//! Operator authentication: passphrase checked against the argon2id hash in
//! operator.toml, with a lockout per operator name after repeated failures
//! (other operators can still log in). Every attempt is audited by callers.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use age::secrecy::SecretString;

use crate::config::Config;
use crate::domain::OperatorName;
use crate::passphrase;

/// Why a log-in was refused. The message never says which part was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("unknown operator or wrong passphrase")]
    Denied,
    #[error("operator {name} is locked out after repeated failures; try again in {}s", .remaining.as_secs().max(1))]
    LockedOut { name: String, remaining: Duration },
}

#[derive(Default)]
struct Failures {
    count: u32,
    locked_until: Option<Instant>,
}

/// Checks operators against the config.
pub struct Authenticator {
    operators: HashMap<String, String>,
    limit: u32,
    lockout: Duration,
    failures: Mutex<HashMap<String, Failures>>,
}

impl Authenticator {
    pub fn new(config: &Config) -> Self {
        Authenticator {
            operators: config
                .operators
                .iter()
                .map(|o| (o.name.to_string(), o.passphrase_hash.clone()))
                .collect(),
            limit: config.console.lockout_after,
            lockout: config.console.lockout_for,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Checks `name` and `passphrase`. Slow on purpose (argon2id): call it
    /// off the UI thread.
    pub fn check(&self, name: &str, passphrase: &SecretString) -> Result<OperatorName, AuthError> {
        let now = Instant::now();
        {
            let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(f) = failures.get_mut(name)
                && let Some(until) = f.locked_until
            {
                if until > now {
                    return Err(AuthError::LockedOut {
                        name: name.to_string(),
                        remaining: until - now,
                    });
                }
                *f = Failures::default();
            }
        }
        let ok = self
            .operators
            .get(name)
            .is_some_and(|hash| passphrase::verify(passphrase, hash));
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        if ok {
            failures.remove(name);
            return OperatorName::new(name).map_err(|_| AuthError::Denied);
        }
        let f = failures.entry(name.to_string()).or_default();
        f.count += 1;
        if f.count >= self.limit {
            f.locked_until = Some(now + self.lockout);
        }
        Err(AuthError::Denied)
    }
}
