//! Escaping user input for LDAP: values put into a search filter ([`escape_filter_value`],
//! RFC 4515 §3) and into a distinguished name ([`escape_dn_value`], RFC 4514 §2.4). A username
//! typed at a login prompt goes through one of these before it reaches a filter or DN
//! template, so `*`, `)(uid=*` or `,ou=admins` are matched as text, never as syntax.
//!
//! Pure. Invariants: the output of either function contains no unescaped character that is
//! special where it is used; escaping is total (every input has an escaped form).
//! Tests: `mod tests` below; plugins/auth-ldap uses both.

use std::fmt::Write as _;

/// `value` as an RFC 4515 assertion value: `*`, `(`, `)`, `\` and NUL become `\2a`, `\28`,
/// `\29`, `\5c` and `\00`; so does every byte outside printable ASCII (control characters and
/// each byte of a non-ASCII character's UTF-8 form), which matches the same octets.
///
/// ```
/// use lilt_plugin_sdk::ldap::escape_filter_value;
/// assert_eq!(escape_filter_value("alice)(uid=*"), "alice\\29\\28uid=\\2a");
/// assert_eq!(format!("(uid={})", escape_filter_value("*")), "(uid=\\2a)");
/// ```
pub fn escape_filter_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'*' | b'(' | b')' | b'\\' => {
                let _ = write!(out, "\\{b:02x}");
            }
            0x20..=0x7e => out.push(char::from(b)),
            _ => {
                let _ = write!(out, "\\{b:02x}");
            }
        }
    }
    out
}

/// `value` as an RFC 4514 attribute value: `"`, `+`, `,`, `;`, `<`, `>`, `=` and `\` are
/// backslash-escaped, as are a leading `#` or space and a trailing space; NUL and other
/// control characters become `\HH` (each byte of their UTF-8 form).
///
/// ```
/// use lilt_plugin_sdk::ldap::escape_dn_value;
/// assert_eq!(escape_dn_value("alice,ou=x"), "alice\\,ou\\=x");
/// assert_eq!(escape_dn_value(" #a "), "\\ #a\\ ");
/// ```
pub fn escape_dn_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        match c {
            '"' | '+' | ',' | ';' | '<' | '>' | '=' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            c if c.is_control() => {
                let mut buf = [0; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    let _ = write!(out, "\\{b:02x}");
                }
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_specials_are_hex_escaped() {
        assert_eq!(escape_filter_value("alice"), "alice");
        assert_eq!(escape_filter_value("*"), "\\2a");
        assert_eq!(escape_filter_value("a(b)c"), "a\\28b\\29c");
        assert_eq!(escape_filter_value("a\\b"), "a\\5cb");
        assert_eq!(escape_filter_value("a\0b"), "a\\00b");
        assert_eq!(escape_filter_value("alice)(uid=*"), "alice\\29\\28uid=\\2a");
        assert_eq!(escape_filter_value("é"), "\\c3\\a9");
        assert_eq!(escape_filter_value("a\nb"), "a\\0ab");
        // DN syntax is harmless in a filter value and kept readable.
        assert_eq!(
            escape_filter_value("cn=admin,dc=example"),
            "cn=admin,dc=example"
        );
        assert_eq!(escape_filter_value(""), "");
    }

    #[test]
    fn escaped_filter_values_have_no_filter_syntax() {
        for v in ["*", "(", ")", "\\", "a)(|(uid=*", "x\0", "\\2a", "ü*"] {
            let e = escape_filter_value(v);
            assert!(!e.contains(['*', '(', ')', '\0']), "{v:?} → {e:?}");
            // Every backslash starts a two-hex-digit escape.
            let b = e.as_bytes();
            for (i, _) in e.match_indices('\\') {
                assert!(b.get(i + 1).is_some_and(u8::is_ascii_hexdigit), "{e:?}");
                assert!(b.get(i + 2).is_some_and(u8::is_ascii_hexdigit), "{e:?}");
            }
        }
    }

    #[test]
    fn dn_specials_are_escaped() {
        assert_eq!(escape_dn_value("alice"), "alice");
        assert_eq!(escape_dn_value("alice,ou=x"), "alice\\,ou\\=x");
        assert_eq!(escape_dn_value("a+b"), "a\\+b");
        assert_eq!(escape_dn_value("\"q\""), "\\\"q\\\"");
        assert_eq!(escape_dn_value("a;b<c>d\\e"), "a\\;b\\<c\\>d\\\\e");
        assert_eq!(escape_dn_value("#a"), "\\#a");
        assert_eq!(escape_dn_value("a#"), "a#");
        assert_eq!(escape_dn_value(" a b "), "\\ a b\\ ");
        assert_eq!(escape_dn_value(" "), "\\ ");
        assert_eq!(escape_dn_value("a\0b"), "a\\00b");
        assert_eq!(escape_dn_value("é*()"), "é*()");
        assert_eq!(escape_dn_value(""), "");
    }
}
