//! Input rules shared by the forms, the API and the command line, so they cannot drift:
//! emails, a webhook's fields, and which addresses a webhook may reach (the SSRF guard).

pub mod filter;
pub mod headers;
pub mod ssrf;
pub mod webhook;

use unicode_normalization::UnicodeNormalization;

/// The one spelling of an email under which an account is stored and found: trimmed,
/// Unicode NFC (so `é` typed precomposed or as `e` + combining accent is one letter), then
/// lowercased. [`crate::models::user::User`] applies it on every write and lookup, so no
/// entry point (login, CLI, operator console) can skip it.
pub fn normalize_email(email: &str) -> String {
    let composed: String = email.trim().nfc().collect();
    composed.to_lowercase().nfc().collect()
}

/// A light check: one `@`, something on both sides, a dot in the domain, no spaces.
pub fn is_plausible_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Whether text holds an encoded NUL character (`%00`): no address of Hookboard has a use
/// for it, and PostgreSQL cannot store it.
pub fn has_encoded_nul(text: &str) -> bool {
    text.as_bytes().windows(3).any(|w| w == b"%00")
}

/// What an address with an encoded NUL is told.
pub const NUL_MESSAGE: &str = "The address may not contain the NUL character (%00).";

#[cfg(test)]
mod tests {
    #[test]
    fn emails_have_one_spelling_whatever_the_unicode_form_or_case() {
        let precomposed = super::normalize_email("jos\u{e9}@a.example");
        assert_eq!(precomposed, "jos\u{e9}@a.example");
        for other in [
            "jose\u{301}@a.example",
            "JOS\u{c9}@A.EXAMPLE",
            "JOSE\u{301}@a.example",
            "  jos\u{e9}@a.example\n",
        ] {
            assert_eq!(super::normalize_email(other), precomposed, "{other:?}");
        }
        assert_eq!(
            super::normalize_email("\u{212b}ngstr\u{f6}m@x.example"),
            "\u{e5}ngstr\u{f6}m@x.example"
        );
    }

    #[test]
    fn emails_need_a_local_part_and_a_dotted_domain() {
        assert!(super::is_plausible_email("ana@alpine-tours.example"));
        assert!(!super::is_plausible_email("ana@localhost"));
        assert!(!super::is_plausible_email("@tours.example"));
        assert!(!super::is_plausible_email("ana tours@x.example"));
        assert!(!super::is_plausible_email("a@b@c.example"));
    }
}
