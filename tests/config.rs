//! operator.toml at the library level: the committed example parses with the
//! documented defaults, and every kind of mistake is reported with its file,
//! line and key — all of them at once.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::Duration;

use hotline::config::{Config, Deadlines};
use hotline::crypto::StationKeys;
use hotline::crypto::keys::signing_key_text;
use hotline::domain::{Language, Precedence, StationName};
use hotline::problem::Problem;

const COMMITTED: &str = include_str!("../operator.toml");
const PATH: &str = "x/operator.toml";

fn parse(text: &str) -> Config {
    match Config::parse(text, Path::new(PATH)) {
        Ok(c) => c,
        Err(e) => panic!("expected a valid config, got:\n{e}\n--- text ---\n{text}"),
    }
}

fn errors(text: &str) -> Vec<Problem> {
    match Config::parse(text, Path::new(PATH)) {
        Ok(_) => panic!("expected errors, but the config was accepted:\n{text}"),
        Err(e) => e.0,
    }
}

/// 1-based line of the only line containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    let hits: Vec<usize> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains(needle))
        .map(|(i, _)| i + 1)
        .collect();
    assert_eq!(
        hits.len(),
        1,
        "`{needle}` should occur on exactly one line: {hits:?}"
    );
    hits[0]
}

/// 1-based line of the `n`th (0-based) line containing `needle`.
fn nth_line_with(text: &str, needle: &str, n: usize) -> usize {
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.contains(needle))
        .nth(n)
        .map(|(i, _)| i + 1)
        .unwrap_or_else(|| panic!("no line {n} with `{needle}`"))
}

/// The one problem about `key`, checked to sit on the line holding `needle`.
fn problem_at<'p>(problems: &'p [Problem], text: &str, key: &str, needle: &str) -> &'p Problem {
    let found: Vec<&Problem> = problems.iter().filter(|p| p.key == key).collect();
    assert_eq!(
        found.len(),
        1,
        "expected one problem for key `{key}`, got {problems:#?}"
    );
    let p = found[0];
    assert_eq!(
        p.line,
        Some(line_of(text, needle)),
        "wrong line for `{key}`: {p}"
    );
    assert_eq!(p.path, Path::new(PATH), "{p}");
    let shown = p.to_string();
    assert!(
        shown.starts_with(&format!("{PATH}:{}: key `{key}`: ", line_of(text, needle))),
        "display should be FILE:LINE: key `k`: message, got {shown}"
    );
    p
}

const MINIMAL: &str = "[station]\nname = \"WASHINGTON\"\n";

/// A well-formed argon2id hash, computed once.
static HASH: LazyLock<String> = LazyLock::new(|| {
    hotline::passphrase::hash(&age::secrecy::SecretString::from(
        "correct horse battery".to_string(),
    ))
    .expect("hashing works")
});

struct PeerText {
    signing_key: String,
    age_recipient: String,
    pq_recipient: Option<String>,
    fingerprint: String,
}

fn peer_keys(name: &str) -> PeerText {
    let keys =
        StationKeys::generate(StationName::new(name).expect("valid name")).expect("random source");
    let public = keys.public();
    PeerText {
        signing_key: signing_key_text(&public.signing),
        age_recipient: public.age.to_string(),
        pq_recipient: public.pq.as_ref().map(ToString::to_string),
        fingerprint: public.fingerprint(),
    }
}

#[test]
fn committed_example_parses_with_documented_values() {
    let c = parse(COMMITTED);
    assert_eq!(c.path, Path::new(PATH));
    assert_eq!(c.station.name.as_str(), "WASHINGTON");
    assert_eq!(c.station.language, Language::EN);
    assert_eq!(c.station.time_zone, "America/New_York");
    assert_eq!(
        c.station.listen,
        "0.0.0.0:7401".parse::<SocketAddr>().expect("addr")
    );
    assert_eq!(
        c.station.addresses,
        vec!["127.0.0.1:7401".parse::<SocketAddr>().expect("addr")]
    );
    assert_eq!(c.station.key_file, Path::new("x/station.key"));
    assert_eq!(c.station.card, Path::new("x/station.card.toml"));
    assert_eq!(c.station.data_dir, Path::new("x/data"));
    assert_eq!(c.journal_path, Path::new("x/data/journal.sqlite"));

    let d = &c.deadlines;
    assert_eq!(d.flash, Duration::from_secs(10 * 60));
    assert_eq!(d.immediate, Duration::from_secs(30 * 60));
    assert_eq!(d.priority, Duration::from_secs(3 * 3600));
    assert_eq!(d.routine, Duration::from_secs(6 * 3600));
    assert_eq!(*d, Deadlines::default());
    assert_eq!(
        d.for_precedence(Precedence::Flash),
        Duration::from_secs(600)
    );
    assert_eq!(
        d.for_precedence(Precedence::Routine),
        Duration::from_secs(6 * 3600)
    );

    assert_eq!(c.link.test_interval, Duration::from_secs(3600));
    assert_eq!(c.link.flash_receipt_alarm, Duration::from_secs(30));
    assert_eq!(c.link.max_clock_skew, Duration::from_secs(30));
    assert_eq!(c.link.retry_window, Duration::from_secs(300));
    assert_eq!(c.console.idle_lock, Duration::from_secs(15 * 60));
    assert!(!c.console.two_person_flash);
    assert_eq!(c.console.lockout_after, 5);
    assert_eq!(c.console.lockout_for, Duration::from_secs(300));
    assert!(c.operators.is_empty());
    assert!(c.peers.is_empty());
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn minimal_config_takes_the_defaults() {
    let c = parse(MINIMAL);
    assert_eq!(c.deadlines, Deadlines::default());
    assert_eq!(c.deadlines.flash, Duration::from_secs(600));
    assert_eq!(c.deadlines.immediate, Duration::from_secs(1800));
    assert_eq!(c.deadlines.priority, Duration::from_secs(10_800));
    assert_eq!(c.deadlines.routine, Duration::from_secs(21_600));
    assert_eq!(c.station.language, Language::EN);
    assert_eq!(c.station.time_zone, "UTC");
    assert_eq!(
        c.station.listen,
        "0.0.0.0:7401".parse::<SocketAddr>().expect("addr")
    );
    assert!(c.station.addresses.is_empty());
    assert_eq!(c.station.key_file, Path::new("x/station.key"));
    assert_eq!(c.station.card, Path::new("x/station.card.toml"));
    assert_eq!(c.station.data_dir, Path::new("x/data"));
    assert_eq!(c.journal_path, Path::new("x/data/journal.sqlite"));
    assert_eq!(c.link.test_interval, Duration::from_secs(3600));
    assert_eq!(c.console.lockout_after, 5);
}

#[test]
fn paths_resolve_beside_the_config() {
    let text = "[station]\nname = \"WASHINGTON\"\ndata_dir = \"/srv/hotline\"\nkey_file = \"keys/s.key\"\n\
                [journal]\npath = \"j/journal.sqlite\"\n";
    let c = parse(text);
    assert_eq!(
        c.station.data_dir,
        Path::new("/srv/hotline"),
        "absolute paths stay as written"
    );
    assert_eq!(c.station.key_file, Path::new("x/keys/s.key"));
    assert_eq!(
        c.journal_path,
        Path::new("x/j/journal.sqlite"),
        "journal.path is relative to the config, not data_dir"
    );

    // A config named without a directory resolves against the current one.
    let bare = Config::parse(MINIMAL, Path::new("operator.toml")).expect("valid");
    assert_eq!(bare.station.data_dir, PathBuf::from("./data"));
    assert_eq!(bare.journal_path, PathBuf::from("./data/journal.sqlite"));
}

#[test]
fn deadlines_can_be_overridden() {
    let c = parse(&format!(
        "{MINIMAL}[deadlines]\nflash = \"5m\"\nroutine = \"1d 2h\"\n"
    ));
    assert_eq!(c.deadlines.flash, Duration::from_secs(300));
    assert_eq!(
        c.deadlines.immediate,
        Duration::from_secs(1800),
        "unset keys keep their default"
    );
    assert_eq!(c.deadlines.routine, Duration::from_secs(26 * 3600));
}

#[test]
fn unknown_station_key_names_line_key_and_valid_keys() {
    let text = "[station]\nname = \"WASHINGTON\"\ncolour = \"red\"\nlanguage = \"en\"\n";
    let problems = errors(text);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    let p = &problems[0];
    assert_eq!(p.path, Path::new(PATH));
    assert_eq!(p.line, Some(3), "{p}");
    assert!(p.message.contains("colour"), "names the unknown key: {p}");
    for valid in ["name", "key_file", "data_dir", "time_zone", "addresses"] {
        assert!(
            p.message.contains(valid),
            "lists the valid key `{valid}`: {p}"
        );
    }
    assert!(p.to_string().starts_with("x/operator.toml:3: "), "{p}");
}

#[test]
fn unknown_key_in_other_tables_is_refused_too() {
    let text = format!("{MINIMAL}\n[deadlines]\nflash = \"10m\"\nflsh = \"5m\"\n");
    let problems = errors(&text);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_eq!(problems[0].line, Some(line_of(&text, "flsh")));
    assert!(problems[0].message.contains("flsh"), "{}", problems[0]);
    assert!(problems[0].message.contains("immediate"), "{}", problems[0]);
}

#[test]
fn missing_station_table_is_an_error() {
    let problems = errors("[deadlines]\nflash = \"10m\"\n");
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(problems[0].message.contains("station"), "{}", problems[0]);
}

#[test]
fn bad_duration() {
    let text = format!("{MINIMAL}[deadlines]\nflash = \"10\"\n[link]\ntest_interval = \"0s\"\n");
    let problems = errors(&text);
    assert_eq!(problems.len(), 2, "{problems:#?}");
    let p = problem_at(&problems, &text, "deadlines.flash", "flash = ");
    assert!(p.message.contains("`10` is not a duration"), "{p}");
    let z = problem_at(&problems, &text, "link.test_interval", "test_interval");
    assert!(z.message.contains("longer than zero"), "{z}");
}

#[test]
fn bad_time_zone() {
    let text = "[station]\nname = \"WASHINGTON\"\ntime_zone = \"Mars/Olympus_Mons\"\n";
    let problems = errors(text);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    let p = problem_at(&problems, text, "station.time_zone", "time_zone");
    assert!(
        p.message.contains("Mars/Olympus_Mons") && p.message.contains("IANA"),
        "{p}"
    );
}

#[test]
fn bad_language() {
    let text = "[station]\nname = \"WASHINGTON\"\nlanguage = \"de\"\n";
    let problems = errors(text);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    let p = problem_at(&problems, text, "station.language", "language");
    assert!(
        p.message.contains("no console texts in `de`") && p.message.contains("\"en\" (English)"),
        "{p}"
    );
}

#[test]
fn bad_addresses() {
    let text = "[station]\nname = \"WASHINGTON\"\naddresses = [\n  \"127.0.0.1:7401\",\n  \"localhost:7401\",\n]\n";
    let problems = errors(text);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    let p = problem_at(&problems, text, "station.addresses", "localhost");
    assert!(p.message.contains("IP:port"), "{p}");

    let text = "[station]\nname = \"WASHINGTON\"\nlisten = \"7401\"\n";
    let problems = errors(text);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    problem_at(&problems, text, "station.listen", "listen");
}

#[test]
fn bad_station_name() {
    let text = "# a comment\n[station]\nname = \"washington\"\n";
    let problems = errors(text);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    let p = problem_at(&problems, text, "station.name", "name");
    assert!(p.message.contains("capital letters"), "{p}");
}

#[test]
fn peer_without_card_or_keys() {
    let text = format!("{MINIMAL}\n[[peers]]\nname = \"MOSCOW\"\nprimary = \"192.0.2.20:7401\"\n");
    let problems = errors(&text);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    let p = problem_at(&problems, &text, "peers", "MOSCOW");
    assert!(
        p.message.contains("card") && p.message.contains("signing_key"),
        "{p}"
    );

    // Only one of the two keys is no better.
    let k = peer_keys("MOSCOW");
    let text = format!(
        "{MINIMAL}\n[[peers]]\nname = \"MOSCOW\"\nsigning_key = \"{}\"\n",
        k.signing_key
    );
    let problems = errors(&text);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    problem_at(&problems, &text, "peers", "MOSCOW");
}

#[test]
fn peer_with_matching_keys_is_accepted() {
    let k = peer_keys("MOSCOW");
    let text = format!(
        "{MINIMAL}\n[[peers]]\nname = \"MOSCOW\"\nsigning_key = \"{}\"\nage_recipient = \"{}\"\npq_recipient = \"{}\"\n\
         fingerprint = \"{}\"\nprimary = \"192.0.2.20:7401\"\ntime_zone = \"Europe/Moscow\"\n",
        k.signing_key,
        k.age_recipient,
        k.pq_recipient.as_deref().expect("a post-quantum recipient"),
        k.fingerprint
    );
    let c = parse(&text);
    let peer = c.peer("MOSCOW").expect("peer present");
    assert_eq!(peer.keys.fingerprint(), k.fingerprint);
    assert!(peer.keys.post_quantum());
    assert_eq!(peer.time_zone, "Europe/Moscow");
    assert_eq!(peer.primary, Some("192.0.2.20:7401".parse().expect("addr")));
    assert_eq!(peer.backup, None);
}

#[test]
fn peer_fingerprint_must_match_its_keys() {
    let k = peer_keys("MOSCOW");
    let other = peer_keys("MOSCOW");
    let text = format!(
        "{MINIMAL}\n[[peers]]\nname = \"MOSCOW\"\nsigning_key = \"{}\"\nage_recipient = \"{}\"\npq_recipient = \"{}\"\n\
         fingerprint = \"{}\"\n",
        k.signing_key,
        k.age_recipient,
        k.pq_recipient.as_deref().expect("a post-quantum recipient"),
        other.fingerprint
    );
    let problems = errors(&text);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    let p = problem_at(&problems, &text, "peers.fingerprint", "fingerprint");
    assert!(
        p.message.contains(&k.fingerprint),
        "names the computed fingerprint: {p}"
    );
    // The same keys with the post-quantum recipient left out (as a card
    // stripped in transit to force classic sealing would give them) no
    // longer match the fingerprint read aloud for the whole card.
    let stripped = format!(
        "{MINIMAL}\n[[peers]]\nname = \"MOSCOW\"\nsigning_key = \"{}\"\nage_recipient = \"{}\"\nfingerprint = \"{}\"\n",
        k.signing_key, k.age_recipient, k.fingerprint
    );
    let problems = errors(&stripped);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    problem_at(&problems, &stripped, "peers.fingerprint", "fingerprint");
}

#[test]
fn peer_bad_keys_and_card() {
    let k = peer_keys("MOSCOW");
    let text = format!(
        "{MINIMAL}\n[[peers]]\nname = \"MOSCOW\"\nsigning_key = \"ed25519:notbase64!\"\nage_recipient = \"{}\"\n",
        k.age_recipient
    );
    let problems = errors(&text);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    problem_at(&problems, &text, "peers.signing_key", "signing_key");

    let text = format!("{MINIMAL}\n[[peers]]\nname = \"MOSCOW\"\ncard = \"no/such/card.toml\"\n");
    let problems = errors(&text);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    let p = problem_at(&problems, &text, "peers.card", "card =");
    assert!(
        p.message.contains("x/no/such/card.toml"),
        "the card path resolves beside the config: {p}"
    );
}

#[test]
fn peer_cannot_be_this_station_or_listed_twice() {
    let k = peer_keys("WASHINGTON");
    let text = format!(
        "{MINIMAL}\n[[peers]]\nname = \"WASHINGTON\"\nsigning_key = \"{}\"\nage_recipient = \"{}\"\n",
        k.signing_key, k.age_recipient
    );
    let problems = errors(&text);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_eq!(problems[0].key, "peers.name");
    let own = nth_line_with(&text, "WASHINGTON", 1);
    assert_eq!(problems[0].line, Some(own), "{}", problems[0]);
    assert!(problems[0].message.contains("own peer"), "{}", problems[0]);

    let k = peer_keys("MOSCOW");
    let peer = format!(
        "[[peers]]\nname = \"MOSCOW\"\nsigning_key = \"{}\"\nage_recipient = \"{}\"\n",
        k.signing_key, k.age_recipient
    );
    let text = format!("{MINIMAL}\n{peer}\n{peer}");
    let problems = errors(&text);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_eq!(problems[0].key, "peers.name");
    let second = nth_line_with(&text, "MOSCOW", 1);
    assert_eq!(
        problems[0].line,
        Some(second),
        "points at the second listing: {}",
        problems[0]
    );
}

#[test]
fn duplicate_operator() {
    let text = format!(
        "{MINIMAL}\n[[operators]]\nname = \"j.smith\"\nclearance = \"TOP SECRET\"\npassphrase_hash = \"{h}\"\n\n\
         [[operators]]\nname = \"a.jones\"\nclearance = \"SECRET\"\npassphrase_hash = \"{h}\"\n\n\
         [[operators]]\nname = \"j.smith\" # again\nclearance = \"SECRET\"\npassphrase_hash = \"{h}\"\n",
        h = *HASH
    );
    let problems = errors(&text);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    let p = problem_at(&problems, &text, "operators.name", "# again");
    assert!(
        p.message.contains("j.smith") && p.message.contains("twice"),
        "{p}"
    );
}

#[test]
fn operators_with_good_hashes_are_accepted() {
    let text = format!(
        "{MINIMAL}\n[[operators]]\nname = \"j.smith\"\nclearance = \"TOP SECRET\"\npassphrase_hash = \"{}\"\n",
        *HASH
    );
    let c = parse(&text);
    let op = c.operator("j.smith").expect("operator present");
    assert_eq!(op.clearance, "TOP SECRET");
    assert!(hotline::passphrase::verify(
        &age::secrecy::SecretString::from("correct horse battery".to_string()),
        &op.passphrase_hash
    ));
}

#[test]
fn non_argon2_hash() {
    for bad in [
        "$2b$12$abcdefghijklmnopqrstuv",
        "$argon2i$v=19$m=16,t=2,p=1$c2FsdHNhbHQ$aGFzaA",
        "hunter2",
        "$argon2id$garbage",
    ] {
        let text = format!(
            "{MINIMAL}\n[[operators]]\nname = \"j.smith\"\nclearance = \"SECRET\"\npassphrase_hash = \"{bad}\"\n"
        );
        let problems = errors(&text);
        assert_eq!(problems.len(), 1, "{bad}: {problems:#?}");
        let p = problem_at(
            &problems,
            &text,
            "operators.passphrase_hash",
            "passphrase_hash",
        );
        assert!(
            p.message.contains("argon2id") && p.message.contains("operator add j.smith"),
            "{p}"
        );
    }
}

#[test]
fn bad_console_values() {
    let text = format!("{MINIMAL}[console]\nlockout_after = 0\nidle_lock = \"soon\"\n");
    let problems = errors(&text);
    assert_eq!(problems.len(), 2, "{problems:#?}");
    problem_at(&problems, &text, "console.lockout_after", "lockout_after");
    problem_at(&problems, &text, "console.idle_lock", "idle_lock");
}

#[test]
fn what_rings_is_configured_and_a_bad_entry_is_named() {
    assert_eq!(
        parse(MINIMAL).console.ring,
        hotline::config::Ring::default()
    );
    let c = parse(&format!(
        "{MINIMAL}[console]\nring = [\"ROUTINE\", \"acknowledgement\"]\n"
    ));
    assert!(c.console.ring.arrival(hotline::domain::Precedence::Routine));
    assert!(
        c.console.ring.arrival(hotline::domain::Precedence::Flash),
        "a FLASH always rings"
    );
    assert!(
        !c.console
            .ring
            .arrival(hotline::domain::Precedence::Immediate)
    );
    assert!(c.console.ring.acknowledgements);
    let text = format!("{MINIMAL}[console]\nring = [\"FLASH\", \"loud\"]\n");
    let problems = errors(&text);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    problem_at(&problems, &text, "console.ring", "ring");
    assert!(
        problems[0]
            .message
            .contains("`loud` is not something that rings"),
        "{problems:#?}"
    );
}

#[test]
fn several_problems_are_all_reported() {
    let k = peer_keys("MOSCOW");
    let other = peer_keys("MOSCOW");
    let text = format!(
        "[station]\n\
         name = \"WASHINGTON\"\n\
         language = \"de\"\n\
         time_zone = \"Europe/Atlantis\"\n\
         addresses = [\"192.0.2.10\"]\n\
         \n\
         [link]\n\
         retry_window = \"5 minutes\"\n\
         \n\
         [deadlines]\n\
         flash = \"10\"\n\
         \n\
         [[operators]]\n\
         name = \"j.smith\"\n\
         clearance = \"TOP SECRET\"\n\
         passphrase_hash = \"{h}\"\n\
         \n\
         [[operators]]\n\
         name = \"j.smith\" # twice\n\
         clearance = \"TOP SECRET\"\n\
         passphrase_hash = \"plaintext-oops\"\n\
         \n\
         [[peers]]\n\
         name = \"MOSCOW\"\n\
         signing_key = \"{sk}\"\n\
         age_recipient = \"{ar}\"\n\
         fingerprint = \"{fp}\"\n\
         time_zone = \"Moon/Tranquility\"\n\
         \n\
         [[peers]]\n\
         name = \"KYIV\"\n",
        h = *HASH,
        sk = k.signing_key,
        ar = k.age_recipient,
        fp = other.fingerprint,
    );
    let problems = errors(&text);
    let expected = [
        ("station.language", "language"),
        ("station.time_zone", "Europe/Atlantis"),
        ("station.addresses", "addresses"),
        ("link.retry_window", "retry_window"),
        ("deadlines.flash", "flash"),
        ("operators.name", "# twice"),
        ("operators.passphrase_hash", "plaintext-oops"),
        ("peers.fingerprint", "fingerprint"),
        ("peers.time_zone", "Moon/Tranquility"),
        ("peers", "KYIV"),
    ];
    for (key, needle) in expected {
        problem_at(&problems, &text, key, needle);
    }
    assert_eq!(problems.len(), expected.len(), "{problems:#?}");
    let shown = hotline::problem::Problems(problems).to_string();
    assert_eq!(
        shown.lines().count(),
        expected.len(),
        "one line per problem:\n{shown}"
    );
}

/// A bad station name (or listen address) must not hide the rest of the
/// file's problems: `hotline check` promises every problem, not just the first.
#[test]
fn bad_station_name_does_not_hide_other_problems() {
    let text = "[station]\nname = \"washington\"\ntime_zone = \"Nowhere/None\"\n\n[deadlines]\nflash = \"10\"\n";
    let problems = errors(text);
    problem_at(&problems, text, "station.name", "name");
    problem_at(&problems, text, "station.time_zone", "time_zone");
    problem_at(&problems, text, "deadlines.flash", "flash");
    assert_eq!(problems.len(), 3, "{problems:#?}");

    let text = "[station]\nname = \"WASHINGTON\"\nlisten = \"any\"\n\n[link]\ntest_interval = \"hourly\"\n";
    let problems = errors(text);
    problem_at(&problems, text, "station.listen", "listen");
    problem_at(&problems, text, "link.test_interval", "test_interval");
    assert_eq!(problems.len(), 2, "{problems:#?}");
}

#[test]
fn toml_syntax_error_has_a_line() {
    let text = "[station]\nname = \"WASHINGTON\"\nlanguage = en\n";
    let problems = errors(text);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_eq!(problems[0].line, Some(3), "{}", problems[0]);
    assert_eq!(problems[0].path, Path::new(PATH));
}

// ---------------------------------------------------------------------------
// The fuzzers' corpora, replayed
// ---------------------------------------------------------------------------

#[path = "fuzz/targets.rs"]
mod fuzz_targets;

/// Every input the fuzzers kept (`tests/fuzz/corpus/TARGET`), and every
/// crash they found, minimised (`tests/fuzz/artifacts/TARGET`), goes
/// through its target again: none may panic. Each corpus holds inputs, so
/// a replay that read nothing fails.
#[test]
fn the_fuzz_corpora_replay_without_a_panic() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz");
    for (name, target) in fuzz_targets::TARGETS {
        let mut replayed = 0;
        for dir in [
            fuzz.join("corpus").join(name),
            fuzz.join("artifacts").join(name),
        ] {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries {
                let path = entry.expect("corpus entry").path();
                let data = std::fs::read(&path).expect("corpus file");
                let outcome = std::panic::catch_unwind(|| target(&data));
                assert!(outcome.is_ok(), "{name}: {} panics", path.display());
                replayed += 1;
            }
        }
        assert!(replayed > 0, "the {name} corpus is empty");
    }
}

/// The label policy: the default is confidential; a policy's markings are
/// checked, and a default or a peer's ceiling that names no marking is an
/// error at its line, listing the markings.
#[test]
fn label_policy_is_checked_with_line_and_the_valid_markings() {
    let c = parse(MINIMAL);
    assert_eq!(c.labels, hotline::config::LabelPolicy::default());
    assert_eq!(c.labels.default, "CONFIDENTIAL");

    let k = peer_keys("MOSCOW");
    let good = format!(
        "{MINIMAL}\n[labels]\nmarkings = [\"UNCLASSIFIED\", \"CONFIDENTIAL – HOTLINE\", \"EYES ONLY\"]\n\
         default = \"CONFIDENTIAL – HOTLINE\"\n\n[[peers]]\nname = \"MOSCOW\"\nmax_label = \"EYES ONLY\"\n\
         signing_key = \"{}\"\nage_recipient = \"{}\"\n",
        k.signing_key, k.age_recipient
    );
    let c = parse(&good);
    assert_eq!(c.labels.markings.len(), 3);
    assert_eq!(c.labels.default, "CONFIDENTIAL – HOTLINE");
    assert_eq!(c.peers[0].max_label.as_deref(), Some("EYES ONLY"));

    let bad = good
        .replace(
            "default = \"CONFIDENTIAL – HOTLINE\"",
            "default = \"SECRET\"",
        )
        .replace("max_label = \"EYES ONLY\"", "max_label = \"TOP\"");
    let problems = errors(&bad);
    let p = problem_at(&problems, &bad, "labels.default", "default = \"SECRET\"");
    assert!(p.message.contains("\"EYES ONLY\""), "{p}");
    problem_at(&problems, &bad, "peers.max_label", "max_label = \"TOP\"");

    let twice = good.replace("\"EYES ONLY\"]", "\"UNCLASSIFIED\"]");
    let problems = errors(&twice);
    assert!(
        problems
            .iter()
            .any(|p| p.key == "labels.markings" && p.message.contains("twice")),
        "{problems:#?}"
    );
}

#[test]
fn a_backup_schedule_is_read_and_its_mistakes_are_named_with_their_line() {
    let recipient = age::pq::Identity::generate().to_public().to_string();
    let good = format!(
        "{MINIMAL}\n[backup]\ninterval = \"6h\"\ndirectory = \"backups\"\nkeep = 3\nto = [\"{recipient}\"]\n"
    );
    let c = parse(&good);
    let b = c.backup.expect("a schedule");
    assert_eq!(b.interval, std::time::Duration::from_secs(6 * 3600));
    assert_eq!(b.directory, Path::new("x/backups"));
    assert_eq!((b.keep, b.to, b.with_keys), (3, vec![recipient], false));
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    // CONTROL: no section, no schedule.
    assert!(parse(MINIMAL).backup.is_none());

    let own = format!("{MINIMAL}\n[backup]\ninterval = \"1d\"\ndirectory = \"b\"\n");
    let c = parse(&own);
    assert_eq!(c.backup.expect("a schedule").keep, 14);
    assert!(
        c.warnings.iter().any(|w| w.contains("station's own key")),
        "{:?}",
        c.warnings
    );

    let bad = format!(
        "{MINIMAL}\n[backup]\ninterval = \"soon\"\ndirectory = \"b\"\nkeep = 0\nto = [\"age1nope\"]\n"
    );
    let problems = errors(&bad);
    problem_at(&problems, &bad, "backup.interval", "soon");
    problem_at(&problems, &bad, "backup.keep", "keep = 0");
    problem_at(&problems, &bad, "backup.to", "age1nope");
    let missing = format!("{MINIMAL}\n[backup]\ninterval = \"1d\"\n");
    let problems = errors(&missing);
    assert!(
        problems.iter().any(|p| p.message.contains("directory")),
        "{problems:#?}"
    );
}

#[test]
fn the_control_section_names_the_socket_and_the_operators_group() {
    let c = parse(MINIMAL);
    assert_eq!(c.control.socket, Path::new("x/data/station.sock"));
    assert!(
        c.control.group.is_none(),
        "owner-only unless a group is named"
    );

    let group = hotline::fsutil::group_id("root")
        .expect("lookup")
        .expect("group root");
    let c = parse(&format!(
        "{MINIMAL}\n[control]\nsocket = \"/run/hotline/station.sock\"\ngroup = \"root\"\n"
    ));
    assert_eq!(c.control.socket, Path::new("/run/hotline/station.sock"));
    let g = c.control.group.expect("the group");
    assert_eq!((g.name.as_str(), g.gid), ("root", group));
    let relative = parse(&format!("{MINIMAL}\n[control]\nsocket = \"run/s.sock\"\n"));
    assert_eq!(relative.control.socket, Path::new("x/run/s.sock"));

    let bad = format!("{MINIMAL}\n[control]\ngroup = \"no-such-group-here\"\n");
    let problems = errors(&bad);
    let p = problem_at(&problems, &bad, "control.group", "no-such-group-here");
    assert!(p.message.contains("leave `group` out"), "{p}");
}
