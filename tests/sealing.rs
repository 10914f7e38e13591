//! Sealing end to end with real keys and real age: a message built by the
//! composer is signed and encrypted by one station and opened by another,
//! and every way a hostile or damaged message can be refused is refused with
//! its own error. Each rejection test also opens the same construction with
//! the bad part removed, so a test that could not fail would show.

use std::collections::BTreeMap;

use age::Recipient;
use hotline::compose::{self, Draft, Origin};
use hotline::crypto::age_io;
use hotline::crypto::seal::MAX_MESSAGE_PLAINTEXT;
use hotline::crypto::signed::{self, Kind};
use hotline::crypto::{
    OpenError, Opened, PeerKeys, SealError, StationKeys, open_inbound, open_outbound, seal,
};
use hotline::domain::{Language, Message, OperatorName, StationName};
use hotline::templates::{Catalog, ReaderView, for_reader};
use jiff::Timestamp;

const MISSILE_TITLE_EN: &str = "Ballistic missile launch notification";
const MISSILE_TITLE_RU: &str = "Уведомление о пуске баллистической ракеты";

fn station(name: &str) -> StationKeys {
    StationKeys::generate(StationName::new(name).expect("station name")).expect("keys")
}

fn name(n: &str) -> StationName {
    StationName::new(n).expect("station name")
}

fn origin(from: &StationName, language: Language) -> Origin {
    Origin {
        station: from.clone(),
        operator: OperatorName::new("j.smith").expect("operator name"),
        second_operator: None,
        language,
    }
}

/// A FLASH missile-launch notification from `from` to `to`, checked and
/// built by the composer exactly as a release would build it.
fn missile_launch(from: &StationName, to: &StationName, language: Language) -> Message {
    let fields: BTreeMap<String, String> = [
        ("launch_time", "2026-12-01T06:00:00Z"),
        ("launch_window", "2h"),
        ("launch_area", "62.9N 40.7E"),
        ("impact_area", "65.0N 175.0E"),
        ("missile_type", "icbm"),
        ("count", "1"),
        ("remarks", "Routine test of the notification channel."),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let draft = Draft {
        template_id: "missile-launch".into(),
        fields,
        text: "Planned launch; no threat to the other Party.".into(),
        ..Draft::default()
    };
    let now = Timestamp::now();
    let checked = compose::check(&draft, Catalog::builtin(), now).expect("the draft is valid");
    compose::build(&checked, &origin(from, language), to, 7, now)
}

/// The JSON body `seal` signs for `message`.
fn body_of(message: &Message) -> Vec<u8> {
    serde_json::to_vec(message).expect("serialise")
}

/// Builds a sealed message by hand: `doc` encrypted with age to `to`.
fn encrypt_to(doc: &[u8], to: &[&PeerKeys]) -> Vec<u8> {
    let recipients: Vec<&dyn Recipient> = to.iter().map(|p| &p.age as &dyn Recipient).collect();
    age_io::encrypt(doc, &recipients).expect("age encrypts")
}

/// Signs `body` as a message document from `signer` with `key`, then
/// encrypts it to `to`.
fn sign_and_encrypt(body: &[u8], signer: &str, key: &StationKeys, to: &[&PeerKeys]) -> Vec<u8> {
    let doc = signed::sign(Kind::Message, &name(signer), body, &key.signing);
    encrypt_to(&doc, to)
}

/// Opens as `me` with exactly `pinned` as the pinned peers.
fn open_as(ciphertext: &[u8], me: &StationKeys, pinned: &[PeerKeys]) -> Result<Opened, OpenError> {
    open_inbound(ciphertext, me, |signer| {
        pinned.iter().find(|p| p.name.as_str() == signer)
    })
}

/// Where the age header ends (just after the `--- MAC` line) and the
/// payload (nonce, then STREAM chunks) begins.
fn header_end(ciphertext: &[u8]) -> usize {
    let mac_line = find(ciphertext, b"\n--- ").expect("an age header has a MAC line") + 1;
    mac_line
        + ciphertext[mac_line..]
            .iter()
            .position(|&b| b == b'\n')
            .expect("MAC line ends")
        + 1
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn find_all(haystack: &[u8], needle: &[u8]) -> Vec<usize> {
    haystack
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i)
        .collect()
}

/// Replaces one base64 character (the first letter or digit from `at` on;
/// keys are random, so `+` or `/` may stand at `at`) with another valid one,
/// so the header still parses as base64 but carries different bytes.
fn change_b64_char(bytes: &mut [u8], at: usize) {
    let at = (at..bytes.len())
        .find(|&i| bytes[i].is_ascii_alphanumeric())
        .expect("a base64 letter or digit after the position");
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
}

fn is_tampered(r: &Result<Opened, OpenError>) -> bool {
    matches!(r, Err(OpenError::Tampered(_)))
}

// ---------------------------------------------------------------------------
// 1. Round trip
// ---------------------------------------------------------------------------

#[test]
fn sealed_message_opens_at_the_peer_and_at_the_sender() {
    let washington = station("WASHINGTON");
    let moscow = station("MOSCOW");
    let message = missile_launch(&washington.name, &moscow.name, Language::EN);
    assert_eq!(message.original.language, "en");
    assert!(
        message.original.text.contains(MISSILE_TITLE_EN),
        "{}",
        message.original.text
    );

    let sealed = seal(&message, &washington, &moscow.public()).expect("seals");

    // It really is encrypted: nothing of the signed document shows.
    assert!(sealed.starts_with(b"age-encryption.org/v1\n"));
    for clear in [
        &b"hotline/1"[..],
        b"WASHINGTON",
        b"MOSCOW",
        b"icbm",
        b"j.smith",
    ] {
        assert!(
            find(&sealed, clear).is_none(),
            "{} is visible in the ciphertext",
            String::from_utf8_lossy(clear)
        );
    }
    // Two recipients, the peer and ourselves, both post-quantum: no
    // classic stanza, which would undo what the hybrid ones protect.
    let header = &sealed[..header_end(&sealed)];
    assert_eq!(
        find_all(header, b"\n-> mlkem768x25519 ").len(),
        2,
        "{}",
        String::from_utf8_lossy(header)
    );
    assert!(
        find_all(header, b"\n-> X25519 ").is_empty(),
        "{}",
        String::from_utf8_lossy(header)
    );

    // The peer opens it, pinning the sender.
    let opened = open_as(&sealed, &moscow, &[washington.public()]).expect("MOSCOW opens it");
    assert_eq!(opened.message, message);
    let prefix = "hotline/1 message\nsigner: WASHINGTON\nsignature: ";
    assert!(
        opened.plaintext.starts_with(prefix.as_bytes()),
        "{}",
        String::from_utf8_lossy(&opened.plaintext[..80.min(opened.plaintext.len())])
    );
    // The signature covers exactly the body that was parsed.
    let body = signed::parse(&opened.plaintext)
        .expect("parses")
        .verify(Kind::Message, &washington.signing.verifying_key())
        .expect("verifies with WASHINGTON's key");
    assert_eq!(body, body_of(&message).as_slice());
    let reparsed: Message = serde_json::from_slice(body).expect("body is the message JSON");
    assert_eq!(reparsed, message);

    // The sender opens its own copy from the outbox.
    let own = open_outbound(&sealed, &washington).expect("WASHINGTON opens its own copy");
    assert_eq!(own.message, message);
    assert_eq!(own.plaintext, opened.plaintext);

    // And each side's post-quantum identity alone decrypts it (encrypted
    // to both); a classic identity alone does not.
    for me in [&moscow, &washington] {
        let pq = me.pq.as_ref().expect("post-quantum identity");
        let ids: [&dyn age::Identity; 1] = [pq];
        let plain = age_io::decrypt(&sealed[..], &ids, MAX_MESSAGE_PLAINTEXT).expect("decrypts");
        assert_eq!(plain, opened.plaintext);
        let ids: [&dyn age::Identity; 1] = [&me.age];
        assert!(matches!(
            age_io::decrypt(&sealed[..], &ids, MAX_MESSAGE_PLAINTEXT),
            Err(age_io::AgeError::NotForUs)
        ));
    }
}

#[test]
fn seal_refuses_a_message_that_is_not_ours_or_not_for_this_peer() {
    let washington = station("WASHINGTON");
    let moscow = station("MOSCOW");
    let london = station("LONDON");
    let message = missile_launch(&washington.name, &moscow.name, Language::EN);

    let not_ours = seal(&message, &london, &moscow.public())
        .expect_err("LONDON cannot seal WASHINGTON's message");
    assert!(
        matches!(&not_ours, SealError::NotFromUs { from, us } if from.as_str() == "WASHINGTON" && us.as_str() == "LONDON"),
        "{not_ours:?}"
    );
    let wrong_peer = seal(&message, &washington, &london.public())
        .expect_err("MOSCOW's message to LONDON's keys");
    assert!(
        matches!(&wrong_peer, SealError::RecipientMismatch { to, peer } if to.as_str() == "MOSCOW" && peer.as_str() == "LONDON"),
        "{wrong_peer:?}"
    );
    // Control: the right pair seals.
    assert!(seal(&message, &washington, &moscow.public()).is_ok());
}

// ---------------------------------------------------------------------------
// 2. Each rejection has its own error
// ---------------------------------------------------------------------------

#[test]
fn flipped_payload_bytes_are_tampered() {
    let washington = station("WASHINGTON");
    let moscow = station("MOSCOW");
    let pinned = [washington.public()];
    let message = missile_launch(&washington.name, &moscow.name, Language::EN);
    let sealed = seal(&message, &washington, &moscow.public()).expect("seals");
    // Control: untouched, it opens.
    assert_eq!(
        open_as(&sealed, &moscow, &pinned).expect("opens").message,
        message
    );

    let payload = header_end(&sealed);
    // The payload is a 16-byte nonce followed by one STREAM chunk here.
    assert!(
        sealed.len() > payload + 16 + 16,
        "payload too short: {}",
        sealed.len() - payload
    );
    for (what, at) in [
        ("nonce", payload + 3),
        ("first ciphertext byte", payload + 16),
        ("middle of the chunk", (payload + 16 + sealed.len()) / 2),
        ("last byte (tag)", sealed.len() - 1),
    ] {
        let mut bad = sealed.clone();
        bad[at] ^= 0x01;
        let r = open_as(&bad, &moscow, &pinned);
        assert!(is_tampered(&r), "{what} flipped at {at}: {r:?}");
        // The sender's own copy is refused the same way.
        let r = open_outbound(&bad, &washington);
        assert!(
            is_tampered(&r),
            "{what} flipped at {at}, sender's copy: {r:?}"
        );
    }

    // Truncation and trailing garbage are tampering too.
    let r = open_as(&sealed[..sealed.len() - 1], &moscow, &pinned);
    assert!(is_tampered(&r), "truncated: {r:?}");
    let r = open_as(&sealed[..payload + 16], &moscow, &pinned);
    assert!(is_tampered(&r), "no chunks: {r:?}");
    let mut longer = sealed.clone();
    longer.extend_from_slice(b"more");
    let r = open_as(&longer, &moscow, &pinned);
    assert!(is_tampered(&r), "trailing bytes: {r:?}");
}

#[test]
fn flipped_header_bytes_are_refused_precisely() {
    let washington = station("WASHINGTON");
    let moscow = station("MOSCOW");
    let pinned = [washington.public()];
    let message = missile_launch(&washington.name, &moscow.name, Language::EN);
    let sealed = seal(&message, &washington, &moscow.public()).expect("seals");
    assert!(
        open_as(&sealed, &moscow, &pinned).is_ok(),
        "control: the untouched message opens"
    );

    // The header MAC: the file key is found, then the MAC does not verify.
    let mac = find(&sealed, b"\n--- ").expect("MAC line") + 5;
    let mut bad = sealed.clone();
    change_b64_char(&mut bad, mac + 10);
    let r = open_as(&bad, &moscow, &pinned);
    assert!(is_tampered(&r), "MAC changed: {r:?}");

    // The version line: no longer an age v1 file.
    let mut bad = sealed.clone();
    let v1 = find(&bad, b"/v1\n").expect("version line");
    bad[v1 + 2] = b'2';
    let r = open_as(&bad, &moscow, &pinned);
    assert!(is_tampered(&r), "version changed: {r:?}");

    // A recipient stanza's wrapped file key. age cannot tell a damaged stanza
    // from one for another key, so the station whose stanza it was finds none
    // for it (NotForUs); the other one unwraps its own stanza, and then the
    // header MAC, which covers every stanza, fails (Tampered).
    let stanzas = find_all(&sealed[..header_end(&sealed)], b"\n-> mlkem768x25519 ");
    assert_eq!(stanzas.len(), 2);
    let mut patterns = Vec::new();
    for &s in &stanzas {
        let body = s
            + 1
            + sealed[s + 1..]
                .iter()
                .position(|&b| b == b'\n')
                .expect("stanza line ends")
            + 1;
        let mut bad = sealed.clone();
        change_b64_char(&mut bad, body + 10);
        let at_peer = open_as(&bad, &moscow, &pinned);
        let at_sender = open_outbound(&bad, &washington);
        let pattern = match (&at_peer, &at_sender) {
            (Err(OpenError::NotForUs), r) if is_tampered(r) => "peer's stanza",
            (r, Err(OpenError::NotForUs)) if is_tampered(r) => "sender's stanza",
            _ => panic!("stanza at {s} damaged: peer got {at_peer:?}, sender got {at_sender:?}"),
        };
        patterns.push(pattern);
    }
    patterns.sort_unstable();
    assert_eq!(patterns, ["peer's stanza", "sender's stanza"]);
}

#[test]
fn a_forged_signature_is_a_bad_signature() {
    let washington = station("WASHINGTON");
    let impostor = station("WASHINGTON");
    let moscow = station("MOSCOW");
    let pinned = [washington.public()];
    let message = missile_launch(&washington.name, &moscow.name, Language::EN);
    let body = body_of(&message);
    let to = [&moscow.public()];

    // Control: the same document signed with WASHINGTON's real key opens.
    let genuine = sign_and_encrypt(&body, "WASHINGTON", &washington, &to);
    assert_eq!(
        open_as(&genuine, &moscow, &pinned).expect("opens").message,
        message
    );

    // Anyone can age-encrypt to MOSCOW; only the signature proves the sender.
    let forged = sign_and_encrypt(&body, "WASHINGTON", &impostor, &to);
    assert_eq!(
        open_as(&forged, &moscow, &pinned).expect_err("forgery refused"),
        OpenError::BadSignature("WASHINGTON".into())
    );

    // A genuine signature over a body that was changed afterwards.
    let doc = signed::sign(Kind::Message, &washington.name, &body, &washington.signing);
    let text = String::from_utf8(doc).expect("utf8");
    let needle = "\"count\":\"1\"";
    assert!(text.contains(needle), "{text}");
    let altered = text.replacen(needle, "\"count\":\"9\"", 1);
    let r = open_as(&encrypt_to(altered.as_bytes(), &to), &moscow, &pinned);
    assert_eq!(
        r.expect_err("altered body refused"),
        OpenError::BadSignature("WASHINGTON".into())
    );
}

#[test]
fn a_message_for_another_station_is_the_wrong_recipient() {
    let washington = station("WASHINGTON");
    let moscow = station("MOSCOW");
    let pinned = [washington.public()];
    let to_moscow = [&moscow.public()];

    // Control: addressed to MOSCOW, signed by WASHINGTON, encrypted to MOSCOW.
    let for_moscow = missile_launch(&washington.name, &moscow.name, Language::EN);
    let sealed = sign_and_encrypt(&body_of(&for_moscow), "WASHINGTON", &washington, &to_moscow);
    assert_eq!(
        open_as(&sealed, &moscow, &pinned).expect("opens").message,
        for_moscow
    );

    // Addressed to LONDON, validly signed, but encrypted to MOSCOW.
    let for_london = missile_launch(&washington.name, &name("LONDON"), Language::EN);
    let sealed = sign_and_encrypt(&body_of(&for_london), "WASHINGTON", &washington, &to_moscow);
    assert_eq!(
        open_as(&sealed, &moscow, &pinned).expect_err("not addressed to MOSCOW"),
        OpenError::WrongRecipient {
            to: "LONDON".into(),
            us: "MOSCOW".into()
        }
    );
}

#[test]
fn a_pinned_peer_signing_for_another_is_the_wrong_sender() {
    let washington = station("WASHINGTON");
    let london = station("LONDON");
    let moscow = station("MOSCOW");
    let pinned = [washington.public(), london.public()];
    let to = [&moscow.public()];

    // Control: LONDON signs its own message.
    let own = missile_launch(&london.name, &moscow.name, Language::EN);
    let sealed = sign_and_encrypt(&body_of(&own), "LONDON", &london, &to);
    assert_eq!(
        open_as(&sealed, &moscow, &pinned).expect("opens").message,
        own
    );

    // LONDON, with its own valid key, signs a body that says it is from WASHINGTON.
    let claimed = missile_launch(&washington.name, &moscow.name, Language::EN);
    let sealed = sign_and_encrypt(&body_of(&claimed), "LONDON", &london, &to);
    assert_eq!(
        open_as(&sealed, &moscow, &pinned).expect_err("sender mismatch"),
        OpenError::WrongSender {
            signer: "LONDON".into(),
            from: "WASHINGTON".into()
        }
    );
}

#[test]
fn a_signer_that_is_not_pinned_is_an_unknown_sender() {
    let washington = station("WASHINGTON");
    let paris = station("PARIS");
    let moscow = station("MOSCOW");
    let message = missile_launch(&paris.name, &moscow.name, Language::EN);
    let sealed = seal(&message, &paris, &moscow.public()).expect("seals");

    // Control: with PARIS pinned, it opens.
    let opened = open_as(&sealed, &moscow, &[washington.public(), paris.public()]).expect("opens");
    assert_eq!(opened.message, message);

    assert_eq!(
        open_as(&sealed, &moscow, &[washington.public()]).expect_err("PARIS is not pinned"),
        OpenError::UnknownSender("PARIS".into())
    );
    assert_eq!(
        open_as(&sealed, &moscow, &[]).expect_err("nobody is pinned"),
        OpenError::UnknownSender("PARIS".into())
    );
    // The outbound path only trusts this station's own key.
    assert_eq!(
        open_outbound(&sealed, &moscow).expect_err("not MOSCOW's own message"),
        OpenError::UnknownSender("PARIS".into())
    );
}

#[test]
fn a_message_encrypted_to_someone_else_is_not_for_us() {
    let washington = station("WASHINGTON");
    let london = station("LONDON");
    let moscow = station("MOSCOW");
    let message = missile_launch(&washington.name, &london.name, Language::EN);
    let sealed = seal(&message, &washington, &london.public()).expect("seals");

    // Control: LONDON opens it.
    assert_eq!(
        open_as(&sealed, &london, &[washington.public()])
            .expect("opens")
            .message,
        message
    );

    assert_eq!(
        open_as(&sealed, &moscow, &[washington.public()]).expect_err("MOSCOW holds no key for it"),
        OpenError::NotForUs
    );
    assert_eq!(
        open_outbound(&sealed, &moscow).expect_err("nor as outbound"),
        OpenError::NotForUs
    );
}

#[test]
fn garbage_inside_valid_age_is_malformed() {
    let washington = station("WASHINGTON");
    let moscow = station("MOSCOW");
    let pinned = [washington.public()];
    let to = [&moscow.public()];
    let message = missile_launch(&washington.name, &moscow.name, Language::EN);

    // Control: the real document, encrypted the same way, opens.
    let genuine = sign_and_encrypt(&body_of(&message), "WASHINGTON", &washington, &to);
    assert_eq!(
        open_as(&genuine, &moscow, &pinned).expect("opens").message,
        message
    );

    let receipt = signed::sign(
        Kind::Receipt,
        &washington.name,
        &body_of(&message),
        &washington.signing,
    );
    let not_a_message = signed::sign(
        Kind::Message,
        &washington.name,
        b"{\"hello\": 1}",
        &washington.signing,
    );
    let cases: [(&str, &[u8]); 6] = [
        ("empty", b""),
        ("plain text", b"this is not a hotline message at all\n"),
        ("binary", &[0xff, 0xfe, 0x00, 0x01, b'\n', b'\n']),
        (
            "unknown tag",
            b"hotline/9 message\nsigner: WASHINGTON\nsignature: AAAA\n\n{}",
        ),
        ("a signed receipt, not a message", &receipt),
        ("a signed body that is not a message", &not_a_message),
    ];
    for (what, plaintext) in cases {
        let r = open_as(&encrypt_to(plaintext, &to), &moscow, &pinned);
        assert!(matches!(r, Err(OpenError::Malformed(_))), "{what}: {r:?}");
    }
}

#[test]
fn an_oversized_plaintext_is_too_large() {
    let washington = station("WASHINGTON");
    let moscow = station("MOSCOW");
    let pinned = [washington.public()];
    let to = [&moscow.public()];
    let limit = usize::try_from(MAX_MESSAGE_PLAINTEXT).expect("fits");

    // Control: exactly at the limit is decrypted (and then found not to be a message).
    let r = open_as(&encrypt_to(&vec![b'x'; limit], &to), &moscow, &pinned);
    assert!(
        matches!(r, Err(OpenError::Malformed(_))),
        "at the limit: {r:?}"
    );

    let r = open_as(&encrypt_to(&vec![b'x'; limit + 1], &to), &moscow, &pinned);
    assert_eq!(
        r.expect_err("over the limit"),
        OpenError::TooLarge {
            limit: MAX_MESSAGE_PLAINTEXT
        }
    );
}

// ---------------------------------------------------------------------------
// 3. The rendering travels with the message
// ---------------------------------------------------------------------------

#[test]
fn a_russian_reader_gets_a_russian_rendering_and_an_english_reader_the_original() {
    let washington = station("WASHINGTON");
    let moscow = station("MOSCOW");
    let message = missile_launch(&washington.name, &moscow.name, Language::EN);
    let sealed = seal(&message, &washington, &moscow.public()).expect("seals");
    let received = open_as(&sealed, &moscow, &[washington.public()])
        .expect("opens")
        .message;

    match for_reader(&received, Catalog::builtin(), Language::RU) {
        ReaderView::Rendered { text, language } => {
            assert_eq!(language, Language::RU);
            assert!(text.contains(MISSILE_TITLE_RU), "{text}");
            assert!(text.contains("FLASH"), "{text}");
            assert!(
                text.contains("Межконтинентальная баллистическая ракета"),
                "choice not in Russian: {text}"
            );
            // Free text is never translated; it is marked with its language.
            assert!(
                text.contains("Planned launch; no threat to the other Party."),
                "{text}"
            );
            assert!(text.contains("язык оригинала: English"), "{text}");
            assert!(!text.contains(MISSILE_TITLE_EN), "{text}");
            assert_ne!(text, received.original.text);
        }
        other => panic!("expected a Russian rendering, got {other:?}"),
    }

    assert_eq!(
        for_reader(&received, Catalog::builtin(), Language::EN),
        ReaderView::Original {
            text: message.original.text.clone()
        }
    );
    assert!(message.original.text.contains(MISSILE_TITLE_EN));
    assert!(
        message
            .original
            .text
            .contains("Intercontinental ballistic missile")
    );
}

#[test]
fn a_russian_original_is_rendered_in_english_for_an_english_reader() {
    let washington = station("WASHINGTON");
    let moscow = station("MOSCOW");
    let message = missile_launch(&moscow.name, &washington.name, Language::RU);
    assert_eq!(message.original.language, "ru");
    assert!(
        message.original.text.contains(MISSILE_TITLE_RU),
        "{}",
        message.original.text
    );
    let sealed = seal(&message, &moscow, &washington.public()).expect("seals");
    let received = open_as(&sealed, &washington, &[moscow.public()])
        .expect("opens")
        .message;

    match for_reader(&received, Catalog::builtin(), Language::EN) {
        ReaderView::Rendered { text, language } => {
            assert_eq!(language, Language::EN);
            assert!(text.contains(MISSILE_TITLE_EN), "{text}");
            assert!(text.contains("original language: русский"), "{text}");
            assert!(!text.contains(MISSILE_TITLE_RU), "{text}");
        }
        other => panic!("expected an English rendering, got {other:?}"),
    }
    assert!(matches!(
        for_reader(&received, Catalog::builtin(), Language::RU),
        ReaderView::Original { text } if text == message.original.text
    ));
}

#[test]
fn a_reader_without_the_template_gets_the_original_and_the_reason() {
    let washington = station("WASHINGTON");
    let moscow = station("MOSCOW");
    let message = missile_launch(&washington.name, &moscow.name, Language::EN);
    let sealed = seal(&message, &washington, &moscow.public()).expect("seals");
    let received = open_as(&sealed, &moscow, &[washington.public()])
        .expect("opens")
        .message;

    match for_reader(&received, &Catalog::default(), Language::RU) {
        ReaderView::OriginalOnly { text, reason } => {
            assert_eq!(text, message.original.text);
            assert!(reason.contains("missile-launch"), "{reason}");
        }
        other => panic!("expected the original only, got {other:?}"),
    }

    // A station that has only another version of the template says so.
    let source = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/assets/templates/missile-launch.toml"
    ))
    .expect("template source");
    assert!(source.contains("\nversion = 1\n"));
    let v2 = source.replacen("\nversion = 1\n", "\nversion = 2\n", 1);
    let (catalog, problems) =
        Catalog::from_sources([(std::path::PathBuf::from("missile-launch.toml"), v2.as_str())]);
    assert!(problems.is_empty(), "{problems:?}");
    match for_reader(&received, &catalog, Language::RU) {
        ReaderView::OriginalOnly { text, reason } => {
            assert_eq!(text, message.original.text);
            // Said in the reader's language.
            assert_eq!(
                reason,
                hotline::lang::format(
                    Language::RU,
                    "render.other_version",
                    &[("id", &"missile-launch"), ("ours", &2), ("theirs", &1)]
                )
            );
        }
        other => panic!("expected the original only, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// 4. The two-person rule is signed
// ---------------------------------------------------------------------------

#[test]
fn the_second_operator_of_a_flash_is_signed_into_the_message() {
    let washington = station("WASHINGTON");
    let moscow = station("MOSCOW");
    let pinned = [washington.public()];
    let to = [&moscow.public()];
    let second = OperatorName::new("a.jones").expect("operator name");
    let mut message = missile_launch(&washington.name, &moscow.name, Language::EN);
    // CONTROL: one operator's message carries no such field at all, so
    // messages without a second operator are signed exactly as before.
    assert!(
        !String::from_utf8_lossy(&body_of(&message)).contains("second_operator"),
        "an absent second operator is not serialised"
    );
    message.second_operator = Some(second.clone());

    let sealed = seal(&message, &washington, &moscow.public()).expect("seals");
    let opened = open_as(&sealed, &moscow, &pinned).expect("MOSCOW opens it");
    assert_eq!(opened.message.second_operator, Some(second.clone()));
    assert_eq!(opened.message, message);
    let own = open_outbound(&sealed, &washington).expect("WASHINGTON opens its own copy");
    assert_eq!(own.message.second_operator, Some(second));

    // Changing or removing the name after signing breaks the signature.
    let doc = signed::sign(
        Kind::Message,
        &washington.name,
        &body_of(&message),
        &washington.signing,
    );
    let text = String::from_utf8(doc).expect("utf8");
    let needle = "\"second_operator\":\"a.jones\",";
    assert!(text.contains(needle), "{text}");
    // CONTROL: the untouched document opens.
    assert!(open_as(&encrypt_to(text.as_bytes(), &to), &moscow, &pinned).is_ok());
    for altered in [
        text.replacen(needle, "\"second_operator\":\"x.other\",", 1),
        text.replacen(needle, "", 1),
    ] {
        assert_eq!(
            open_as(&encrypt_to(altered.as_bytes(), &to), &moscow, &pinned)
                .expect_err("an altered second operator is refused"),
            OpenError::BadSignature("WASHINGTON".into())
        );
    }
}

/// A sealed message whose header repeats the stanza for `other` so that
/// it names `stanzas` recipients, ours last.
fn with_stanzas(stanzas: usize, me: &StationKeys, other: &StationKeys) -> Vec<u8> {
    let real = sign_and_encrypt(b"{}", "MOSCOW", other, &[&other.public(), &me.public()]);
    let mac = find(&real, b"\n--- ").expect("MAC line") + 1;
    let lines: Vec<&[u8]> = real[..mac].split(|b| *b == b'\n').collect();
    // intro, then two lines per stanza (ours is the second stanza).
    let (intro, theirs, ours) = (lines[0], &lines[1..3], &lines[3..5]);
    let mut out = [intro, b"\n"].concat();
    for _ in 0..stanzas - 1 {
        for line in theirs {
            out.extend_from_slice(line);
            out.push(b'\n');
        }
    }
    for line in ours {
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out.extend_from_slice(&real[mac..]);
    out
}

/// Each stanza costs a key operation, so a header of 10,000 is refused
/// before any is tried. The control: the same construction at the limit
/// reaches age (which finds its MAC wrong, the header having changed).
#[test]
fn an_age_header_with_ten_thousand_stanzas_is_refused_before_any_key_is_tried() {
    let (me, other) = (station("WASHINGTON"), station("MOSCOW"));
    let pinned = [other.public()];
    let sealed = with_stanzas(10_000, &me, &other);
    let started = std::time::Instant::now();
    let huge = open_as(&sealed, &me, &pinned);
    eprintln!(
        "10,000 stanzas ({} KiB) refused in {:?}",
        sealed.len() >> 10,
        started.elapsed()
    );
    match &huge {
        Err(OpenError::Tampered(why)) => assert!(
            why.contains(&format!("more than {} recipients", age_io::MAX_STANZAS)),
            "{why}"
        ),
        other => panic!("10,000 stanzas: {other:?}"),
    }
    let at_limit = open_as(
        &with_stanzas(age_io::MAX_STANZAS, &me, &other),
        &me,
        &pinned,
    );
    match &at_limit {
        Err(OpenError::Tampered(why)) => {
            assert!(
                !why.contains("recipients"),
                "the control reaches age: {why}"
            )
        }
        other => panic!("{} stanzas: {other:?}", age_io::MAX_STANZAS),
    }
    let real = sign_and_encrypt(b"{}", "MOSCOW", &other, &[&other.public(), &me.public()]);
    assert!(
        !matches!(open_as(&real, &me, &pinned), Err(OpenError::Tampered(_))),
        "the genuine two-stanza message is not tampered"
    );
}

/// A peer whose card has no post-quantum recipient (a station from before
/// it, not yet upgraded) is still served: its messages are sealed to both
/// stations' classic recipients, never a mix, and open at both ends.
#[test]
fn a_peer_without_a_post_quantum_recipient_is_sealed_classically() {
    let washington = station("WASHINGTON");
    let mut moscow = station("MOSCOW");
    moscow.pq = None;
    let old_card = moscow.public();
    assert!(!old_card.post_quantum());
    let message = missile_launch(&washington.name, &moscow.name, Language::EN);
    let sealed = seal(&message, &washington, &old_card).expect("seals");
    let header = &sealed[..header_end(&sealed)];
    assert_eq!(find_all(header, b"\n-> X25519 ").len(), 2);
    assert!(find_all(header, b"\n-> mlkem768x25519 ").is_empty());
    let opened = open_as(&sealed, &moscow, &[washington.public()]).expect("MOSCOW opens it");
    assert_eq!(opened.message, message);
    let own = open_outbound(&sealed, &washington).expect("WASHINGTON opens its own");
    assert_eq!(own.message, message);
    // Control: to the same station with its post-quantum key, the sealing
    // is post-quantum.
    let upgraded = station("MOSCOW");
    let sealed = seal(&message, &washington, &upgraded.public()).expect("seals");
    let header = &sealed[..header_end(&sealed)];
    assert_eq!(find_all(header, b"\n-> mlkem768x25519 ").len(), 2);
}

/// The security marking is inside the signature: a label changed on the
/// way makes the message fail verification. Control: the same bytes
/// unchanged open, marking and all.
#[test]
fn a_changed_label_fails_verification() {
    let (w, m) = (station("WASHINGTON"), station("MOSCOW"));
    let mut message = missile_launch(&w.name, &m.name, Language::EN);
    message.label = Some("EYES ONLY".into());
    let sealed = seal(&message, &w, &m.public()).expect("seals");
    let doc = age_io::decrypt(&sealed[..], &m.identities(), MAX_MESSAGE_PLAINTEXT).expect("opens");
    let unchanged = encrypt_to(&doc, &[&m.public()]);
    let opened = open_as(&unchanged, &m, &[w.public()]).expect("control: the original opens");
    assert_eq!(opened.message.label.as_deref(), Some("EYES ONLY"));

    let text = String::from_utf8(doc).expect("utf-8");
    let lowered = text.replace("\"label\":\"EYES ONLY\"", "\"label\":\"UNCLASSIFIED\"");
    assert_ne!(lowered, text, "the label is in the signed body");
    let tampered = encrypt_to(lowered.as_bytes(), &[&m.public()]);
    assert!(matches!(
        open_as(&tampered, &m, &[w.public()]),
        Err(OpenError::BadSignature(_))
    ));
}
