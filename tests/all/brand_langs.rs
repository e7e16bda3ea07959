//! The brand plugin written three times, in Rust (examples/brand-plugin), JavaScript
//! (examples/brand-plugin-js) and Python (examples/brand-plugin-py), run by the real `lilt`
//! binary side by side: one vhost each, every one loaded by `path` with `grants =
//! ["stanzas"]` only, the same test body driven against each, and the three transcripts
//! compared.
//!
//! Shell (end-to-end against `lilt serve` and `lilt check-config`). Spec: docs/plugins.md
//! (JavaScript and Python sections) and examples/brand-plugin/src/policy.rs. Invariants
//! checked: the JS and Python components import nothing beyond `stanzas` and what is always
//! granted (they load with `grants = ["stanzas"]`); the brand query gets the same reply from all
//! three (escaping included), other iqs pass to the server the same way; a join to a room on
//! the vhost's MUC with a display name too long, or containing a forbidden word, is refused
//! with the same `not-acceptable` error and text, a name with tabs, control characters and
//! odd spaces is tidied to the same name, and the joiner gets the same welcome; bad settings
//! (an unknown key, a colour that is not `#rrggbb`, a `max_name_length` of 0, a blank
//! forbidden word, wrong types) are refused by each at load.
//! scripts/build-lang-plugins.sh builds the three components first. Tests: this file.

use std::path::{Path, PathBuf};

use crate::harness::{Setup, TestConfig, Vhost, plugin_dir, run_cli, workspace_root};
use crate::muc::Peer;

/// The settings every build gets when it is not the one under test.
const GOOD: &str = r##"{ welcome = "Hi from <Acme> & 'co'", colour = "#ff6600", max_name_length = 12, forbidden_words = ["Admin"] }"##;

/// `(language, the component)` of each build.
fn builds() -> Vec<(&'static str, PathBuf)> {
    let ex = workspace_root().join("examples");
    let all = vec![
        ("rust", plugin_dir().join("brand_plugin.wasm")),
        ("js", ex.join("brand-plugin-js/build/brand_plugin.wasm")),
        ("py", ex.join("brand-plugin-py/build/brand_plugin.wasm")),
    ];
    for (lang, path) in &all {
        assert!(
            path.is_file(),
            "the {lang} brand plugin {} is missing; build it with scripts/build-lang-plugins.sh \
             (scripts/test.sh does)",
            path.display()
        );
    }
    all
}

/// The vhost `LANG.localhost` (anonymous, MUC on `conference.LANG.localhost`) with the brand
/// plugin built at `path`, loaded by path with `grants = ["stanzas"]` and `settings` (an inline
/// TOML table).
fn vhost(lang: &str, path: &Path, settings: &str) -> Vhost {
    Vhost::anonymous(&format!("{lang}.localhost"))
        .with(&format!(
            "[vhosts.muc]\ndomain = \"conference.{lang}.localhost\""
        ))
        .with(&format!(
            "[[vhosts.plugins]]\nplugin = \"brand-plugin\"\npath = {:?}\n\
         grants = [\"stanzas\"]\nsettings = {settings}",
            path.display().to_string()
        ))
}

/// The test body: what a client on `domain` sees, with its own JID and the domain written as
/// `{me}` and `{vhost}` so the transcripts of the three vhosts compare.
async fn transcript(server: &crate::harness::Server, domain: &str) -> Vec<String> {
    let mut p = Peer::anonymous(server, domain).await;
    let mut lines = Vec::new();
    for request in [
        // The brand query.
        "<iq type='get' to='{vhost}' id='b1'><query xmlns='urn:example:brand'/></iq>",
        // The same namespace in a `set`: the plugin passes, the server answers.
        "<iq type='set' to='{vhost}' id='b2'><query xmlns='urn:example:brand'/></iq>",
        // Another get: passes (the server answers the ping).
        "<iq type='get' to='{vhost}' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>",
        // The query again: the plugin keeps answering on its pooled instance.
        "<iq type='get' to='{vhost}' id='b3'><query xmlns='urn:example:brand'/></iq>",
    ] {
        p.send(&request.replace("{vhost}", domain)).await;
        let reply = String::from(&p.next().await);
        lines.push(reply.replace(&p.jid, "{me}").replace(domain, "{vhost}"));
    }
    // Joins to a room on the vhost's MUC, each with a display name (written as XML text).
    let join = |id: &str, name: &str| {
        format!(
            "<presence id='{id}' to='lobby@conference.{domain}/a'><x xmlns='http://jabber.org/protocol/muc'/>\
             <nick xmlns='http://jabber.org/protocol/nick'>{name}</nick></presence>"
        )
    };
    // Thirteen characters: refused (max_name_length = 12). Then a forbidden word, in another
    // case: refused. Neither creates the room.
    for (id, name) in [("j1", "Bartholomew X"), ("j2", "not an aDmIn")] {
        p.send(&join(id, name)).await;
        let reply = String::from(&p.next().await);
        lines.push(reply.replace(&p.jid, "{me}").replace(domain, "{vhost}"));
    }
    // A tab, a NEL (U+0085, a control character), runs of spaces and a no-break space around
    // the ends: joins as "Ann Lee" (the raw name is over twelve characters, the tidy one not).
    // Its own presence, the subject and the welcome arrive; the order of the plugin's message
    // against the room's is not promised, so the three are sorted.
    p.send(&join("j3", "  Ann&#9;&#x85;  Lee&#xA0; ")).await;
    let mut joined = Vec::new();
    for _ in 0..3 {
        let s = String::from(&p.next().await);
        joined.push(s.replace(&p.jid, "{me}").replace(domain, "{vhost}"));
    }
    joined.sort();
    lines.extend(joined);
    p.expect_silence().await;
    p.quit().await;
    lines
}

/// Whether `xml` has `name='value'` (either quote style).
fn has_attr(xml: &str, name: &str, value: &str) -> bool {
    xml.contains(&format!("{name}='{value}'")) || xml.contains(&format!("{name}=\"{value}\""))
}

#[tokio::test]
async fn rust_js_and_python_builds_behave_identically() {
    // Good settings for all three: start the server, run the same body against each.
    let all = builds()
        .iter()
        .map(|(lang, path)| vhost(lang, path, GOOD))
        .collect();
    let server = Setup::new(TestConfig::new(all)).start();
    let mut transcripts = Vec::new();
    for (lang, _) in builds() {
        transcripts.push((
            lang,
            transcript(&server, &format!("{lang}.localhost")).await,
        ));
    }
    let (_, rust) = &transcripts[0];
    let brand = &rust[0];
    assert!(
        brand.contains("type=\"result\"") || brand.contains("type='result'"),
        "{brand}"
    );
    assert!(brand.contains("urn:example:brand"), "{brand}");
    assert!(
        brand.contains("Hi from &lt;Acme&gt; &amp; ") && brand.contains("#ff6600"),
        "the welcome and colour, escaped: {brand}"
    );
    assert!(
        rust[1].contains("error"),
        "a set is not answered by the plugin: {}",
        rust[1]
    );
    assert!(
        !rust[2].contains("error") && !rust[2].contains("brand"),
        "{}",
        rust[2]
    );
    assert_eq!(rust[3], rust[0].replace("b1", "b3"));
    for (line, says) in [
        (&rust[4], "Display names are at most 12 characters."),
        (&rust[5], "Display names may not contain &quot;Admin&quot;."),
    ] {
        assert!(
            has_attr(line, "type", "error") && line.contains("not-acceptable"),
            "a refused join: {line}"
        );
        assert!(
            line.contains(says) || line.contains(&says.replace("&quot;", "\"")),
            "{line}"
        );
    }
    let joined = rust[6..].join("\n");
    assert!(
        joined.contains(">Ann Lee</nick>") && !joined.contains("Ann\t"),
        "the tidied name in the room: {joined}"
    );
    assert!(
        joined.contains(">Hi from &lt;Acme&gt; &amp; 'co'</body>")
            && has_attr(&joined, "from", "lobby@conference.{vhost}")
            && has_attr(&joined, "type", "groupchat"),
        "the welcome, from the room: {joined}"
    );
    assert!(joined.contains("<subject"), "{joined}");
    for (lang, t) in &transcripts[1..] {
        assert_eq!(t, rust, "{lang} differs from rust");
    }
    let log = server.log();
    assert!(!log.contains("trap"), "a plugin trapped:\n{log}");
    let setup = server.stop();

    // Bad settings: each build refuses them at load, naming the key or the rule (one vhost at
    // a time, its compiled component in the data folder's cache by now).
    for (lang, path) in builds() {
        for (settings, says) in [
            (r##"{ color = "#ff6600" }"##, "color"),
            (r#"{ colour = "orange" }"#, "#rrggbb"),
            // serde's message names the type, not the key: only the refusal is compared.
            (r#"{ welcome = 7 }"#, ""),
            (
                r#"{ max_name_length = 0 }"#,
                "max_name_length: must be between 1 and 1000",
            ),
            (
                r#"{ forbidden_words = ["ok", " "] }"#,
                "forbidden_words: a word is blank",
            ),
            (r#"{ forbidden_words = [1] }"#, ""),
        ] {
            setup.rewrite(&TestConfig::new(vec![vhost(lang, &path, settings)]));
            let out = run_cli(&["check-config", &setup.config_arg()], "");
            assert!(!out.success(), "{lang} accepted {settings}: {out:?}");
            assert!(
                out.stderr.contains(&format!("{lang}.localhost")) && out.stderr.contains(says),
                "{lang}, {settings}: {:?}",
                out.stderr
            );
        }
    }
}
