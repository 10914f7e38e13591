//! `Station::handle`: every command from every door, checked and carried
//! out in one place. The station, not its callers, verifies operators,
//! applies the two-person rule, audits what was done and refused, and
//! decides where exports go.

use age::secrecy::SecretString;

use super::api::{ApiError, Command, Door, Passed, Release, Reply, Session};
use super::attachments;
use super::{Station, StationError};
use crate::domain::{MessageId, OperatorName, Precedence};
use crate::sanitize::inert;
use crate::store::Direction;

impl Station {
    /// Carries out one command for `session`. The only way in.
    pub async fn handle(&self, session: &Session, command: Command) -> Result<Reply, ApiError> {
        match command {
            Command::Login {
                operator,
                passphrase,
            } => {
                let who = self
                    .authenticate(session.door(), "login", &operator, passphrase.0)
                    .await?;
                session.log_in(who.clone());
                Ok(Reply::LoggedIn { operator: who })
            }
            Command::SignIn { call_sign } => {
                if !self.inner.options.exercise_only {
                    return Err(ApiError::NotAnExercise);
                }
                let who = OperatorName::new(call_sign.trim()).map_err(|e| ApiError::Refused {
                    detail: e.to_string(),
                })?;
                self.audit_as(&who, "login", "via=console call-sign exercise")
                    .await?;
                session.log_in(who.clone());
                Ok(Reply::LoggedIn { operator: who })
            }
            Command::Logout => {
                if let Some(op) = session.log_out() {
                    let via = format!("via={}", session.door().as_str());
                    self.audit_as(&op, "logout", &via).await?;
                }
                Ok(Reply::LoggedOut)
            }
            Command::VerifySecond {
                operator,
                passphrase,
            } => {
                let who = self
                    .authenticate(session.door(), "second-operator", &operator, passphrase.0)
                    .await?;
                session.verified_second(who.clone());
                Ok(Reply::Verified { operator: who })
            }
            Command::Release(release) => self.handle_release(session, *release).await,
            Command::Acknowledge { id } => {
                let op = logged_in(session)?;
                let row = self.resolve(&id, Direction::In)?;
                self.acknowledge(&op, row.id).await?;
                Ok(Reply::Acknowledged {
                    row: Box::new(self.row(&row.id)?),
                })
            }
            Command::ConfirmRotation { peer, fingerprint } => {
                let op = logged_in(session)?;
                let fingerprint = self.confirm_rotation(&op, &peer, &fingerprint).await?;
                Ok(Reply::RotationConfirmed { peer, fingerprint })
            }
            Command::Backup {
                into,
                name,
                to,
                with_keys,
            } => {
                let op = logged_in(session)?;
                if with_keys && !session.station_user() {
                    let detail = "a backup with the station's key file is taken by the station's own user (sudo -u hotline hotline backup … --with-keys); an operator of its group may take one without the keys".to_string();
                    self.audit_as(&op, "backup-refused", "with-keys by another user")
                        .await?;
                    return Err(ApiError::Refused { detail });
                }
                let backup = self
                    .backup(op.as_str(), into.into_file()?, name, to, with_keys)
                    .await?;
                Ok(Reply::BackedUp {
                    backup: Box::new(backup),
                })
            }
            Command::Cancel { id } => {
                let op = logged_in(session)?;
                let row = self.resolve(&id, Direction::Out)?;
                self.cancel(&op, row.id).await?;
                Ok(Reply::Cancelled {
                    row: Box::new(self.row(&row.id)?),
                })
            }
            Command::Open { id } => {
                logged_in(session)?;
                let id = self.resolve_any(&id)?.id;
                let station = self.clone();
                let message = tokio::task::spawn_blocking(move || station.open(&id))
                    .await
                    .map_err(|e| refused(format!("opening task failed: {e}")))??;
                Ok(Reply::Opened {
                    message: Box::new(message),
                })
            }
            Command::ExportAttachments { id, into } => {
                logged_in(session)?;
                let into = into
                    .into_iter()
                    .map(Passed::into_file)
                    .collect::<Result<Vec<_>, _>>()?;
                let id = self.resolve_any(&id)?.id;
                let (written, skipped) = self.export_attachments(&id, into).await?;
                Ok(Reply::Exported { written, skipped })
            }
            Command::ExportSealed { id, into } => {
                logged_in(session)?;
                let mut file = into.into_file()?;
                let row = self.resolve_any(&id)?;
                let sealed = self
                    .inner
                    .journal
                    .sealed(&row.id)
                    .map_err(StationError::from)?;
                let bytes = sealed.len() as u64;
                tokio::task::spawn_blocking(move || {
                    use std::io::Write as _;
                    file.write_all(&sealed).and_then(|()| file.sync_all())
                })
                .await
                .map_err(|e| refused(format!("export task failed: {e}")))?
                .map_err(|e| refused(format!("writing the sealed message: {e}")))?;
                Ok(Reply::ExportedSealed {
                    row: Box::new(row),
                    bytes,
                })
            }
            Command::Audit { action, detail } => {
                let op = logged_in(session)?;
                self.audit_as(&op, &action, &detail).await?;
                Ok(Reply::Audited)
            }
            // Subjects are content: only a logged-in session sees them.
            Command::List {
                direction,
                limit,
                before,
            } => {
                let station = self.clone();
                let rows = tokio::task::spawn_blocking(move || match limit {
                    None => station.list(direction),
                    Some(n) => station.page(direction, n, before.as_ref()),
                })
                .await
                .map_err(|e| refused(format!("listing task failed: {e}")))??;
                Ok(Reply::Rows {
                    rows: for_session(session, rows),
                })
            }
            Command::Snapshot => {
                self.inner
                    .snapshots
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let station = self.clone();
                let (inbound, outbound) = tokio::task::spawn_blocking(move || {
                    Ok::<_, ApiError>((station.list(Direction::In)?, station.list(Direction::Out)?))
                })
                .await
                .map_err(|e| refused(format!("snapshot task failed: {e}")))??;
                Ok(Reply::Snapshot {
                    inbound: for_session(session, inbound),
                    outbound: for_session(session, outbound),
                    status: Box::new(self.status()),
                    alarms: self.alarms(),
                })
            }
            Command::Subjects { ids } => {
                logged_in(session)?;
                Ok(Reply::Subjects {
                    subjects: self.inner.subjects.of(&ids),
                })
            }
            Command::Alarms => Ok(Reply::Alarms {
                alarms: self.alarms(),
            }),
            Command::ClearAlarm { kind, subject } => {
                let op = logged_in(session)?;
                let alarm = self.clear_alarm(&op, kind, &subject).await?;
                Ok(Reply::AlarmCleared {
                    alarm: Box::new(alarm),
                })
            }
            Command::Status => Ok(Reply::Status {
                status: Box::new(self.status()),
            }),
            Command::Find { direction, query } => {
                logged_in(session)?;
                let station = self.clone();
                let ids = tokio::task::spawn_blocking(move || station.find(direction, &query))
                    .await
                    .map_err(|e| refused(format!("search task failed: {e}")))??;
                Ok(Reply::Found { ids })
            }
            Command::OpenDraft { draft } => {
                let op = logged_in(session)?;
                let file = draft.into_file()?;
                let station = self.clone();
                let saved = tokio::task::spawn_blocking(move || {
                    crate::drafts::read_from(file, &station.inner.keys, &op)
                })
                .await
                .map_err(|e| refused(format!("draft task failed: {e}")))?
                .map_err(|e| refused(e.to_string()))?;
                Ok(Reply::Draft {
                    saved: Box::new(saved),
                })
            }
            Command::LinkTest { peer } => {
                let rtt = self.link_test(&peer).await?;
                Ok(Reply::LinkTested {
                    peer,
                    rtt_ms: rtt.as_millis() as u64,
                })
            }
        }
    }

    async fn handle_release(
        &self,
        session: &Session,
        mut release: Release,
    ) -> Result<Reply, ApiError> {
        let op = logged_in(session)?;
        for handle in &release.refer_to {
            let wanted = if handle.trim().starts_with("to:") {
                Direction::Out
            } else {
                Direction::In
            };
            let id = self.resolve(handle, wanted)?.id;
            if !release.draft.references.contains(&id) {
                release.draft.references.push(id);
            }
        }
        let second = match self.two_person(session, &op, &release) {
            Ok(second) => second,
            Err(reason) => {
                let detail = format!(
                    "to={} template={} reason={}",
                    inert(&release.to),
                    inert(&release.draft.template_id),
                    inert(&reason)
                );
                self.audit_as(&op, "release-refused", &detail).await?;
                return Err(ApiError::TwoPersonRule { reason });
            }
        };
        let files = release
            .attachments
            .into_iter()
            .map(|a| {
                Ok(attachments::Outgoing {
                    name: a.name,
                    file: a.file.into_file()?,
                })
            })
            .collect::<Result<Vec<_>, ApiError>>()?;
        let (released, _) = self
            .release_with_attachments(&op, &release.to, release.draft, files, second)
            .await?;
        Ok(Reply::Released {
            row: Box::new(self.row(&released.id)?),
        })
    }

    /// The second operator a release needs, if it needs one: a FLASH under
    /// the two-person rule names a second operator, verified on this
    /// session within the last few minutes, who is not the releaser.
    fn two_person(
        &self,
        session: &Session,
        op: &OperatorName,
        release: &Release,
    ) -> Result<Option<OperatorName>, String> {
        let precedence = release.draft.precedence.or_else(|| {
            self.inner
                .catalog
                .latest(&release.draft.template_id)
                .map(|t| t.precedence)
        });
        let needed =
            precedence == Some(Precedence::Flash) && self.inner.config.console.two_person_flash;
        let Some(name) = release.second_operator.as_deref() else {
            return if needed {
                Err(
                    "releasing a FLASH needs a second operator; name one (--second-operator)"
                        .into(),
                )
            } else {
                Ok(None)
            };
        };
        if name == op.as_str() {
            session.take_second(name);
            return Err("the second operator must be a different person".into());
        }
        match session.take_second(name) {
            Some(second) => Ok(Some(second)),
            None => Err(format!(
                "second operator {} has not been verified here in the last {} minutes",
                inert(name),
                super::api::SECOND_OPERATOR_VALID.as_secs() / 60
            )),
        }
    }

    /// Checks an operator's passphrase off the async threads (argon2id is
    /// slow on purpose) and audits the attempt either way.
    async fn authenticate(
        &self,
        door: Door,
        action: &str,
        name: &str,
        passphrase: SecretString,
    ) -> Result<OperatorName, ApiError> {
        let station = self.clone();
        let who = name.to_string();
        let result =
            tokio::task::spawn_blocking(move || station.inner.auth.check(&who, &passphrase))
                .await
                .map_err(|e| refused(format!("log-in task failed: {e}")))?;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(super::AuthError::Denied) => "denied",
            Err(super::AuthError::LockedOut { .. }) => "locked-out",
        };
        // A failure is the station's record of what was typed, never an
        // entry in the name of whoever was named.
        let (actor, detail) = match &result {
            Ok(operator) => (
                operator.to_string(),
                format!("via={} outcome={outcome}", door.as_str()),
            ),
            Err(_) => (
                "station".to_string(),
                format!(
                    "name={:?} via={} outcome={outcome}",
                    inert(&name.chars().take(64).collect::<String>()),
                    door.as_str()
                ),
            ),
        };
        self.inner
            .journal
            .audit(&actor, action, &detail)
            .done()
            .await
            .map_err(StationError::from)?;
        Ok(result?)
    }

    async fn audit_as(
        &self,
        op: &OperatorName,
        action: &str,
        detail: &str,
    ) -> Result<(), ApiError> {
        self.inner
            .journal
            .audit(op.as_str(), action, detail)
            .done()
            .await
            .map_err(StationError::from)?;
        Ok(())
    }

    /// The message a caller names: by handle (`MOSCOW/6` for a received
    /// message, `to:MOSCOW/6` for one we sent), which must be of the
    /// direction the command acts on, or by id (or its first 8 or more
    /// characters).
    /// A message of either direction by id, id prefix or handle.
    fn resolve_any(&self, text: &str) -> Result<crate::store::MessageRow, ApiError> {
        let wanted = if text.trim().starts_with("to:") {
            Direction::Out
        } else {
            Direction::In
        };
        self.resolve(text, wanted)
    }

    fn resolve(&self, text: &str, wanted: Direction) -> Result<crate::store::MessageRow, ApiError> {
        let text = text.trim();
        let Some((peer, serial)) = text.rsplit_once('/') else {
            return Ok(self.inner.journal.find(text).map_err(StationError::from)?);
        };
        let (direction, peer) = match peer.strip_prefix("to:") {
            Some(p) => (Direction::Out, p),
            None => (Direction::In, peer),
        };
        let bad = |why: String| ApiError::NotFound {
            detail: format!(
                "`{}` {why}; a handle is PEER/SERIAL for a received message (MOSCOW/6) or to:PEER/SERIAL for one we sent (to:MOSCOW/6)",
                inert(text)
            ),
        };
        let serial: u64 = serial
            .parse()
            .map_err(|_| bad("does not end in a serial number".into()))?;
        crate::domain::StationName::new(peer).map_err(|e| bad(e.to_string()))?;
        if direction != wanted {
            return Err(bad(match wanted {
                Direction::In => "is a message we sent; this takes a received message".into(),
                Direction::Out => "is a message we received; this takes one we sent".into(),
            }));
        }
        Ok(self
            .inner
            .journal
            .find_handle(direction, peer, serial)
            .map_err(StationError::from)?)
    }

    fn row(&self, id: &MessageId) -> Result<crate::store::MessageRow, ApiError> {
        let row = self.inner.journal.row(id).map_err(StationError::from)?;
        Ok(self.inner.subjects.dress(row))
    }
}

/// Rows as a session may see them: without their subjects unless an
/// operator is logged in on it.
fn for_session(
    session: &Session,
    mut rows: Vec<crate::store::MessageRow>,
) -> Vec<crate::store::MessageRow> {
    if session.operator().is_none() {
        for r in &mut rows {
            r.subject = None;
        }
    }
    rows
}

fn logged_in(session: &Session) -> Result<OperatorName, ApiError> {
    session.operator().ok_or(ApiError::NotLoggedIn)
}

fn refused(detail: String) -> ApiError {
    ApiError::Refused { detail }
}
